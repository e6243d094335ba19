"""Iterative (online) preference learning: K rounds of sample → judge → train, each on-policy.

Offline DPO learns from answers an *earlier* model wrote; once the policy moves, those
pairs describe a distribution it no longer samples from. Here every round starts from the
previous round's policy and learns from that policy's own fresh answers:

1. **sample** `samples` answers per prompt from the current policy at `temperature`
   (the chat rendering and sampling the server uses; seeded by round, so re-runs agree);
2. **judge** them: the SIMULATED raters' scoring (their 1-5 ROUGE-L buckets against the
   reference, mean over raters: quickstart only, it needs references) or a reward model
   trained on the collected feedback (works on any prompts);
3. **make training data**: DPO gets every ordered pair whose scores differ by at least
   `min_margin` (ties dropped); RFT (rejection-sampling fine-tuning, "expert iteration")
   gets each prompt's best answer if it scores at least `min_score`;
4. **train** from the current policy (for DPO the round's start is also the reference) with
   the caller's recipe, which keeps the checkpoint whose greedy *validation* answers score
   best (step 0, the round's start, included). That checkpoint is the next round's policy.

The training itself is the caller's (`train_round`): this module only runs the rounds and
writes ``round_<k>/{samples,data}.jsonl`` so every round's data can be inspected.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmops.errors import ConfigError
from llmops.loop.progress import write_json_atomic, write_text_atomic

Scores = list[list[float]]
Judge = Callable[[list[dict[str, Any]], list[list[str]]], Scores]
TrainRound = Callable[[int, str, Path, bool], dict[str, Any]]


@dataclass(frozen=True)
class IterativeSpec:
    """How the rounds sample, judge and select (the training recipe is the caller's)."""

    rounds: int = 3
    method: str = "dpo"  # dpo (pairs) | rft (best answer per prompt)
    judge: str = "raters"  # raters (simulated, needs references) | reward (a trained reward model)
    samples: int = 8  # answers per prompt per round
    temperature: float = 1.0
    max_new_tokens: int = 32
    prompts_per_round: int = 256  # taken from the prompt pool in order, continuing where the last round stopped
    min_margin: float = 0.5  # DPO: least score difference of a pair (ratings: half a star of the mean)
    pairs: str = "all"  # DPO: all (every ordered pair with the margin) | best_vs_worst (one per prompt)
    min_score: float | None = 3.0  # RFT: least score of a prompt's best answer (None: no floor)
    seed: int = 0

    def check(self) -> None:
        if self.rounds < 1 or self.samples < 2 or self.prompts_per_round < 1:
            raise ConfigError(f"iterative: rounds ≥ 1, samples ≥ 2 and prompts_per_round ≥ 1 needed ({self})")
        if self.method not in ("dpo", "rft"):
            raise ConfigError(f"iterative.method: {self.method!r} is not dpo or rft")
        if self.pairs not in ("all", "best_vs_worst"):
            raise ConfigError(f"iterative.pairs: {self.pairs!r} is not all or best_vs_worst")
        if self.judge not in ("raters", "reward"):
            raise ConfigError(f"iterative.judge: {self.judge!r} is not raters or reward")
        if self.temperature <= 0:
            raise ConfigError("iterative.temperature must be > 0: the rounds need distinct samples to compare")


# ---------------------------------------------------------------- 1. sample


def sample_answers(policy: str, prompts: Sequence[str], n: int, temperature: float, max_new_tokens: int,
                   seed: int) -> list[list[str]]:
    """`n` sampled answers per prompt from `policy` (a model ref or adapter dir), chat-rendered as served."""
    from llmops.eval.backends.base import GenerationParams, Prompt
    from llmops.eval.backends.hf import HFBackend

    backend = HFBackend(policy, batch_size=64)
    if hasattr(backend.model, "merge_and_unload"):  # a LoRA policy: the same model (up to float rounding), ~2x faster
        backend.model = backend.model.merge_and_unload()
        backend._neutralise_checkpoint_generation_config()
    tok = backend.tokenizer
    rendered = [Prompt(tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                               add_generation_prompt=True), add_special_tokens=False)
                for p in prompts]
    rows = [r for r in rendered for _ in range(n)]
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    gens = backend.generate(rows, params)
    backend.close()
    texts = [g.text.strip() for g in gens]
    return [texts[i * n:(i + 1) * n] for i in range(len(prompts))]


# ---------------------------------------------------------------- 2. judge


def raters_judge(n_raters: int) -> Judge:
    """The SIMULATED raters' policy (llmops.loop.raters): mean 1-5 rating over `n_raters` raters."""
    from llmops.loop.raters import RATER_SHIFTS, rating_for, rouge_l

    shifts = [RATER_SHIFTS[i % len(RATER_SHIFTS)] for i in range(n_raters)]

    def judge(records: list[dict[str, Any]], answers: list[list[str]]) -> Scores:
        out = []
        for rec, texts in zip(records, answers):
            rouge = [rouge_l(t, rec["completion"]) for t in texts]
            out.append([sum(rating_for(r, s) for s in shifts) / len(shifts) for r in rouge])
        return out

    return judge


def reward_judge(reward_model: str) -> Judge:
    """A trained reward model's scores (no reference needed)."""
    from llmops.preference.reward_model import RewardScorer

    scorer = RewardScorer(reward_model)

    def judge(records: list[dict[str, Any]], answers: list[list[str]]) -> Scores:
        prompts = [[{"role": "user", "content": rec["prompt"]}] for rec, texts in zip(records, answers) for _ in texts]
        flat = scorer.score(prompts, [[{"role": "assistant", "content": t}] for texts in answers for t in texts])
        widths = [len(t) for t in answers]
        starts = [sum(widths[:i]) for i in range(len(widths))]
        return [flat[s:s + w] for s, w in zip(starts, widths)]

    return judge


# ---------------------------------------------------------------- 3. training data


def preference_pairs(records: list[dict[str, Any]], answers: list[list[str]], scores: Scores,
                     min_margin: float, best_vs_worst: bool = False) -> list[dict[str, Any]]:
    """Every ordered pair of distinct answers to a prompt whose scores differ by ≥ `min_margin`
    (`best_vs_worst`: only the widest such pair of each prompt)."""
    pairs = []
    for rec, texts, sc in zip(records, answers, scores):
        if best_vs_worst:
            hi = max(range(len(texts)), key=lambda i: sc[i])
            lo = min(range(len(texts)), key=lambda i: sc[i])
            if sc[hi] - sc[lo] >= min_margin and texts[hi] != texts[lo]:
                pairs.append({"prompt": rec["prompt"], "chosen": texts[hi], "rejected": texts[lo],
                              "margin": round(sc[hi] - sc[lo], 4)})
            continue
        seen = set()
        for i in range(len(texts)):
            for j in range(len(texts)):
                if sc[i] - sc[j] >= min_margin and texts[i] != texts[j] and (texts[i], texts[j]) not in seen:
                    seen.add((texts[i], texts[j]))
                    pairs.append({"prompt": rec["prompt"], "chosen": texts[i], "rejected": texts[j],
                                  "margin": round(sc[i] - sc[j], 4)})
    return pairs


def best_answers(records: list[dict[str, Any]], answers: list[list[str]], scores: Scores,
                 min_score: float | None) -> list[dict[str, Any]]:
    """Each prompt's best-scored answer (the first of ties) if it scores at least `min_score` (None: any)."""
    out = []
    for rec, texts, sc in zip(records, answers, scores):
        best = max(range(len(texts)), key=lambda i: sc[i])
        if (min_score is None or sc[best] >= min_score) and texts[best]:
            out.append({"prompt": rec["prompt"], "completion": texts[best], "score": sc[best]})
    return out


# ---------------------------------------------------------------- 4. the rounds


def rounds_model(name: str) -> str:
    """The registered model the rounds before the last register as (their lineage chains back to the start)."""
    return f"{name}-rounds"


def with_selection(trained: dict[str, Any]) -> dict[str, Any]:
    """A round's training facts plus the checkpoint selection its manifest recorded (``None`` if none)."""
    from llmops.train.manifest import read_manifest

    return {**trained, "selection": (read_manifest(Path(trained["run_dir"])) or {}).get("selection")}


def run_rounds(spec: IterativeSpec, start_policy: str, pool: list[dict[str, Any]], judge: Judge,
               train_round: TrainRound, out_dir: Path, progress: Callable[[str], None] = print,
               resume: bool = False) -> dict[str, Any]:
    """Run `spec.rounds` rounds from `start_policy`; returns the last round's training facts plus a summary.

    `pool`: records with ``prompt`` (and ``completion``, the reference, for the raters' judge);
    never evaluation prompts. `train_round(k, policy, data_path, last)` trains round k from
    `policy` on `data_path` and returns facts with ``final`` (the selected checkpoint) and, if it
    registered it, ``registered`` (its registry ref, then the next round's policy).

    Every round ends by writing ``round_<k>/round.json`` (its summary and training facts).
    `resume`: a round with that file is not redone (its recorded policy goes on), and a round
    whose samples and data were written for the same policy reuses them instead of sampling
    and judging again (its `train_round` is called again: it must resume or return a finished
    run, as `llmops.loop.steps.train` does). The files are written atomically.
    """
    spec.check()
    if not pool:
        raise ConfigError("iterative: the prompt pool is empty")
    policy, rounds, trained = start_policy, [], {}
    for k in range(spec.rounds):
        round_dir = out_dir / f"round_{k}"
        round_dir.mkdir(parents=True, exist_ok=True)
        done_path, samples_path, data_path = round_dir / "round.json", round_dir / "samples.jsonl", round_dir / "data.jsonl"
        if resume and done_path.exists():
            done = json.loads(done_path.read_text())
            if done["round"]["policy"] == policy:
                rounds.append(done["round"])
                trained = done["trained"]
                policy = trained.get("registered") or trained["final"]
                progress(f"round {k}: finished before, not redone (next policy {policy})")
                continue
        first = k * spec.prompts_per_round
        records = [pool[(first + i) % len(pool)] for i in range(min(spec.prompts_per_round, len(pool)))]
        saved = _read_jsonl(samples_path) if resume and data_path.exists() and samples_path.exists() else []
        if saved and [s["prompt"] for s in saved] == [r["prompt"] for r in records] and \
                {s["policy"] for s in saved} == {policy}:
            answers, scores = [s["answers"] for s in saved], [s["scores"] for s in saved]
            data = _read_jsonl(data_path)
            progress(f"round {k}: reusing the samples and data written before")
        else:
            answers = sample_answers(policy, [r["prompt"] for r in records], spec.samples, spec.temperature,
                                     spec.max_new_tokens, seed=spec.seed * 1000 + k)
            scores = judge(records, answers)
            _write_jsonl(samples_path, [{"prompt": r["prompt"], "answers": a, "scores": s, "policy": policy}
                                        for r, a, s in zip(records, answers, scores)])
            if spec.method == "dpo":  # shuffled (seeded): a recipe's data.limit then takes pairs of every prompt
                data = preference_pairs(records, answers, scores, spec.min_margin, spec.pairs == "best_vs_worst")
                random.Random(spec.seed * 1000 + k).shuffle(data)
            else:
                data = best_answers(records, answers, scores, spec.min_score)
            if not data:
                raise ConfigError(f"iterative round {k}: the judge separated no answers (no training data); "
                                  "raise temperature or samples, or lower min_margin/min_score")
            _write_jsonl(data_path, data)
        flat = [x for s in scores for x in s]
        progress(f"round {k}: {len(records)} prompts x {spec.samples} samples from {policy}; "
                 f"mean score {sum(flat) / len(flat):.3f}; {len(data)} training examples")
        trained = train_round(k, policy, data_path, k == spec.rounds - 1)
        rounds.append({"round": k, "policy": policy, "prompts": len(records), "mean_score": sum(flat) / len(flat),
                       "examples": len(data), "final": trained["final"],
                       "registered": trained.get("registered"),
                       "selected_step": (trained.get("selection") or {}).get("best_step"),
                       "metrics": trained.get("metrics")})
        write_json_atomic(done_path, {"round": rounds[-1], "trained": trained})
        policy = trained.get("registered") or trained["final"]  # a registered round is referred to by its ref
    summary = {"spec": asdict(spec), "rounds": rounds}
    write_json_atomic(out_dir / "rounds.json", summary)
    return {**trained, "iterative": summary}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
