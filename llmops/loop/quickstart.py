"""`llmops quickstart`: the whole closed loop on one machine, one stage at a time.

base model → SFT (LoRA) → evaluate vs the base → register v1 → gates → serve →
SIMULATED users → a rating project (overlap k) worked by SIMULATED raters over HTTP →
export corrections (SFT) and preferences → reward model → DPO →
evaluate v2 vs v1 (paired) → register v2 → gates → promote only if better →
A/B quality and prompt drift → ``report.html`` + ``summary.json``.

This module only orchestrates: training, evaluation, registry, serving, feedback and
monitoring are the other subsystems' public APIs (`llmops.loop.steps`). Every stage's
result is stored in ``state.json`` so a re-run resumes after the last finished stage.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from llmops.loop import corrections, steps
from llmops.loop.progress import StageRunner
from llmops.loop.settings import QuickstartSettings

STAGES = 16
IMPROVE_TITLES = {"rft": "rejection-sampling fine-tuning (best-rated responses)", "dpo": "DPO",
                  "iterative_dpo": "iterative DPO (on-policy rounds)",
                  "iterative_rft": "iterative rejection-sampling fine-tuning (on-policy rounds)",
                  "sft_control": "CONTROL without feedback: more SFT on the train split",
                  "dpo_corrections": "DPO + NLL on rated pairs and the raters' corrections"}


class Quickstart:
    def __init__(self, out_dir: Path, settings: QuickstartSettings, db_url: str | None = None,
                 project: Path | None = None) -> None:
        self.out = out_dir.resolve()
        self.s = settings
        self.out.mkdir(parents=True, exist_ok=True)
        self.env: dict[str, str] = {}
        if db_url is None:  # the embedded default: everything under DIR
            db_url = f"sqlite:///{self.out / 'llmops.db'}"
            if "LLMOPS_REGISTRY_ROOT" not in os.environ:
                self.env["LLMOPS_REGISTRY_ROOT"] = str(self.out / "registry")
        # Training registers through `output.register_as`, which uses the default database.
        self.env["LLMOPS_DATABASE_URL"] = db_url
        self.db = db_url
        self.project = project or steps.project_root()
        self.recipes = self.project / "recipes"
        self.suite = self.project / "eval" / "docstring_summary.yaml"
        self.gates = self.recipes / "loop" / "gates.yaml"
        self.runner = StageRunner(self.out, STAGES, fingerprint={"settings": settings.as_dict(), "db": db_url})

    # ------------------------------------------------------------------ helpers

    def _ref(self, version: int) -> str:
        return f"registry:{self.s.name}/{version}"

    def _eval(self, key: str, model_ref: str) -> dict[str, Any]:
        return steps.evaluate(model_ref, self.suite, self.out / "eval" / key, self.s.eval_limit,
                              self.s.eval_max_new_tokens)

    def _train(self, recipe: str, run: str, overrides: list[str]) -> dict[str, Any]:
        sizes = [f"train.grad_accum={self.s.grad_accum}", f"data.limit={self.s.train_limit}"]
        return steps.train(self.recipes / recipe, [f"output.dir={self.out / 'runs' / run}", f"train.seed={self.s.seed}",
                                                   *sizes, *overrides])

    def _records(self, split: str | tuple[str, ...], n: int) -> list[dict[str, Any]]:
        """`n` records of the docstring task from these splits in order (cycling when n is larger)."""
        from llmops.data import load_records

        pool = [r for sp in ((split,) if isinstance(split, str) else split)
                for r in load_records("builtin:docstrings", split=sp)]
        return [pool[i % len(pool)] for i in range(n)]

    # ------------------------------------------------------------------ stages

    def run(self) -> dict[str, Any]:
        """Run (or resume) every stage with this run's database as the process default."""
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            return self._run()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def _run(self) -> dict[str, Any]:
        r, s = self.runner, self.s
        facts: dict[str, Any] = {"settings": s.as_dict(), "db_url": self.db, "out_dir": str(self.out)}
        facts["base"] = r.run("base", self._base, _paths("path"), "build the base model")
        facts["sft"] = r.run("sft", lambda: self._train("sft_lora.yaml", "sft", [
            f"model.base={s.base}", f"train.max_steps={s.sft_steps}", "output.save_merged=false",
            f"output.register_as={s.name}", "train.checkpoint_every=0"]), _paths("final"), "SFT (LoRA) -> v1")
        v1 = steps.registered_version(facts["sft"], s.name, self.db)
        facts["eval_base"] = r.run("eval_base", lambda: self._eval("base", s.base), _paths("dir"), "evaluate the base")
        facts["eval_v1"] = r.run("eval_v1", lambda: self._eval("v1", self._ref(v1)), _paths("dir"), "evaluate v1")
        facts["v1"] = r.run("register_v1", lambda: self._register_v1(v1, facts), title="register v1 (evals, drift ref)")
        facts["promote_v1"] = r.run("promote_v1", lambda: self._promote(v1, None, facts), title="gates: promote v1")
        facts["feedback"] = r.run("feedback", self._collect_feedback, title="serve + SIMULATED users and raters")
        facts["export_sft"] = r.run("export_sft", lambda: {**corrections.export_sft(
            self.db, self.out / "feedback" / "corrections_sft.jsonl", facts["feedback"]["project"]), "simulated": True},
            _paths("path"), "export corrections as SFT data (SIMULATED)")
        facts["export"] = r.run("export", lambda: steps.export_preferences(
            self.db, self.out / "feedback" / "prefs.jsonl", s.export_strategy), _paths("path", "meta"),
            f"export preferences ({s.export_strategy})")
        prefs = facts["export"]["path"]
        facts["reward"] = r.run("reward", lambda: self._train("reward.yaml", "reward", [
            f"model.base={s.base}", f"model.adapter={self._ref(v1)}", f"data.train={prefs}",
            f"train.max_steps={s.reward_steps}", f"train.batch_size={s.pref_batch_size}", "train.checkpoint_every=0",
            "train.eval_every=0"]),
            _paths("final"), "reward model")
        facts["v2_train"] = r.run(f"v2_{s.improve}", lambda: self._improve(v1, prefs), _paths("final"),
                                  f"{IMPROVE_TITLES[s.improve]} from v1 -> v2")
        v2 = steps.registered_version(facts["v2_train"], s.name, self.db)
        facts["eval_v2"] = r.run("eval_v2", lambda: self._eval_v2(v1, v2, facts), _paths("dir"),
                                 "evaluate v2 vs v1 (paired)")
        facts["promote_v2"] = r.run("promote_v2", lambda: self._promote(v2, v1, facts), title="gates: promote v2 if better")
        facts["quality"] = r.run("quality", lambda: self._ab_quality(v1, v2), title="A/B quality (SIMULATED raters)")
        facts["drift"] = r.run("drift", lambda: self._drift(v1), title="prompt drift check")
        facts["registry"] = self._registry_facts()
        facts["timings"] = r.timings()
        from llmops.loop.report import write_report

        paths = r.run("report", lambda: write_report(self.out, facts), _paths("html", "json"), "report")
        facts["report"] = paths
        facts["ui"] = self.ui_commands()
        return facts

    def ui_commands(self) -> dict[str, str]:
        """The commands that open `llmops ui` on this run's database, runs, evaluations and registry."""
        import shlex

        env = "".join(f"{k}={shlex.quote(v)} " for k, v in self.env.items() if k == "LLMOPS_REGISTRY_ROOT")
        db = shlex.quote(self.db)
        return {"key": f"{env}llmops feedback keys create --role admin --name you --db {db}",
                "ui": f"{env}llmops ui --db {db} --runs-dir {shlex.quote(str(self.out / 'runs'))} "
                      f"--evals-dir {shlex.quote(str(self.out / 'eval'))}"}

    def _improve(self, v1: int, prefs: str) -> dict[str, Any]:
        """Train v2 from v1 on the feedback: rejection-sampling fine-tuning or DPO (`settings.improve`)."""
        s = self.s
        common = [f"model.base={s.base}", f"model.adapter={self._ref(v1)}", f"output.register_as={s.name}",
                  "train.checkpoint_every=0"]
        if s.improve == "rft":
            best = steps.export_best_responses(self.db, self.out / "feedback" / "best_responses.jsonl",
                                               s.rft_min_rating)
            result = self._train("sft_lora.yaml", "rft", [*common, f"data.train={best['path']}",
                                                           f"train.max_steps={s.rft_steps}", "output.save_merged=false",
                                                           "data.validation_split=0.1"])
            return {**result, "data": best}
        select = ["train.eval_every=0"]
        if s.dpo_select:  # keep the step whose greedy validation answers score best (v1 itself included)
            select = [f"train.eval_every={s.dpo_eval_every}", f"train.select_best={s.dpo_select}",
                      f"train.generation_eval.suite={self.suite}", "train.generation_eval.split=validation",
                      f"train.generation_eval.limit={s.select_prompts}",
                      f"train.generation_eval.max_new_tokens={s.eval_max_new_tokens}"]
        if s.improve == "sft_control":  # no feedback at all: v1's own SFT data, as many steps as DPO, same selection
            return {**self._train("sft_lora.yaml", "sft_control", [
                *common, f"train.max_steps={s.dpo_steps}", f"train.lr={s.dpo_lr}", "output.save_merged=false",
                *select]), "data": {"train": "builtin:docstrings (split train, as v1)", "feedback": False}}
        if s.improve == "dpo_corrections":  # = dpo with the corrections' export and the NLL term
            s = replace(s, improve="dpo", dpo_strategy=s.corrections_strategy, dpo_rpo_alpha=s.corrections_rpo_alpha)
        if s.improve == "dpo":
            data = None
            if s.dpo_strategy:  # v2's own export of the same feedback (e.g. with the raters' corrections)
                # only the rating project's items: a forked run's database also holds its source's A/B items
                project = json.loads((self.out / "state.json").read_text())["stages"]["feedback"]["result"]["project"]
                data = steps.export_preferences(self.db, self.out / "feedback" / f"prefs_{s.dpo_strategy}.jsonl",
                                                s.dpo_strategy, project=project)
                if s.dpo_select:  # selection generates on validation prompts: they (and their corrections,
                    # i.e. references) stay out of training, so the selection is not fit to them
                    data.update(self._without_selection_prompts(Path(data["path"])))
                prefs = data["path"]
            result = self._train("dpo.yaml", "dpo", [*common, f"data.train={prefs}", f"train.max_steps={s.dpo_steps}",
                                                     f"train.lr={s.dpo_lr}", f"train.batch_size={s.pref_batch_size}",
                                                     f"dpo.rpo_alpha={s.dpo_rpo_alpha}", *select])
            return {**result, "data": data} if data else result
        if s.improve in ("iterative_dpo", "iterative_rft"):
            return self._improve_iterative(v1)
        raise ValueError(f"settings.improve: unknown method {s.improve!r} ({', '.join(IMPROVE_TITLES)})")

    def _improve_iterative(self, v1: int) -> dict[str, Any]:
        """K on-policy rounds from v1 (llmops.loop.iterative): sample the current policy on *train*
        prompts, judge, train with selection on the *validation* prompts; the last round registers v2."""
        from llmops.loop import iterative

        s = self.s
        method = s.improve.split("_", 1)[1]
        spec = iterative.IterativeSpec(rounds=s.iter_rounds, method=method, judge=s.iter_judge,
                                       samples=s.iter_samples, temperature=s.iter_temperature,
                                       max_new_tokens=s.max_tokens, prompts_per_round=s.iter_prompts,
                                       min_margin=s.iter_min_margin, pairs=s.iter_pairs, min_score=s.rft_min_rating,
                                       seed=s.seed)
        # the judge: the SIMULATED raters' policy, or the reward model trained on their feedback
        judge = (iterative.raters_judge(s.n_raters) if s.iter_judge == "raters"
                 else iterative.reward_judge(self._reward_final()))
        pool = self._records_split("train")  # never validation (checkpoint selection) nor test (evaluation)
        select = [f"train.eval_every={s.iter_eval_every}", "train.select_best=eval_gen_rougeL",
                  f"train.generation_eval.suite={self.suite}", "train.generation_eval.split=validation",
                  f"train.generation_eval.limit={s.select_prompts}",
                  f"train.generation_eval.max_new_tokens={s.eval_max_new_tokens}"]

        def train_round(k: int, policy: str, data: Path, last: bool) -> dict[str, Any]:
            common = [f"model.base={s.base}", f"model.adapter={policy}", f"data.train={data}",
                      "train.checkpoint_every=0", f"train.max_steps={s.iter_steps}", f"train.lr={s.iter_lr}", *select,
                      # earlier rounds register under NAME-rounds, so v2's lineage chains back to v1 in the registry
                      f"output.register_as={s.name if last else iterative.rounds_model(s.name)}"]
            if method == "dpo":
                result = self._train("dpo.yaml", f"iter_{k}", [*common, f"train.batch_size={s.pref_batch_size}"])
            else:
                result = self._train("sft_lora.yaml", f"iter_{k}", [*common, "output.save_merged=false",
                                                                    "data.validation_split=0.1"])
            return iterative.with_selection(result)

        say = lambda text: tqdm.write(f"  {text}")  # noqa: E731
        return iterative.run_rounds(spec, self._ref(v1), pool, judge, train_round, self.out / "runs" / "iterative",
                                    progress=say)

    def _without_selection_prompts(self, path: Path) -> dict[str, Any]:
        """Copy of the pairs file without the prompts the selection generates on (the first
        `select_prompts` of the validation split, as `train.generation_eval.limit`), written next to it."""
        held = {r["prompt"] for r in self._records_split("validation")[:self.s.select_prompts]}
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        kept = [r for r in rows if r["prompt"] not in held]
        if not kept:
            from llmops.errors import UserError

            raise UserError(f"{path}: every pair is on a validation (selection) prompt; with dpo_select set, "
                            "v2 trains only on the other prompts' feedback")
        out = path.with_name(path.stem + "_train_prompts.jsonl")
        out.write_text("".join(json.dumps(r) + "\n" for r in kept))
        return {"path": str(out), "exported_rows": len(rows), "n_rows": len(kept),
                "dropped_selection_prompt_rows": len(rows) - len(kept),
                "by_source": {src: sum(r.get("source") == src for r in kept) for src in {r.get("source") for r in kept}}}

    def _reward_final(self) -> str:
        return json.loads((self.out / "state.json").read_text())["stages"]["reward"]["result"]["final"]

    @staticmethod
    def _records_split(split: str) -> list[dict[str, Any]]:
        from llmops.data import load_records

        return load_records("builtin:docstrings", split=split)

    def _base(self) -> dict[str, Any]:
        from llmops.models.refs import model_hash, resolve_model

        path = resolve_model(self.s.base)
        return {"ref": self.s.base, "path": str(path), "sha256": model_hash(path)}

    def _register_v1(self, v1: int, facts: dict[str, Any]) -> dict[str, Any]:
        steps.attach_eval(self.s.name, v1, facts["eval_v1"]["dir"], self.db)
        from llmops.config import load_recipe

        sft = load_recipe(facts["sft"]["recipe"], facts["sft"]["overrides"]).recipe
        prompts = [r["prompt"] for r in self._records_spec(sft.data.train, sft.data.limit)]
        digest = steps.drift_reference(self.s.name, v1, prompts, self.db)
        return {"version": v1, "ref": self._ref(v1), "drift_reference_sha256": digest,
                "vs_base": steps.compare(facts["eval_base"]["dir"], facts["eval_v1"]["dir"])}

    @staticmethod
    def _records_spec(spec: str, limit: int | None) -> list[dict[str, Any]]:
        from llmops.data import load_records

        return load_records(spec, split="train", limit=limit)

    def _promote(self, version: int, parent: int | None, facts: dict[str, Any]) -> dict[str, Any]:
        """staging through its gates; production through its gates, and (for a successor) only if better."""
        name = self.s.name
        staging = steps.promote(name, version, "staging", self.gates, self.db, reason="quickstart: trained and evaluated")
        out: dict[str, Any] = {"version": version, "staging": staging}
        if staging["decision"] == "refused":
            out.update(promoted=False, why=f"staging refused: {staging['reason']}")
            return out
        if parent is not None:
            better, why = steps.is_better(facts["eval_v2"]["vs_v1"], self.s.metric, self.s.min_delta)
            out["better"] = {"verdict": better, "detail": why}
            if not better:
                out.update(promoted=False, why=f"kept {name}/{parent} in production: v{version} is not better ({why})")
                return out
        reason = "first production version" if parent is None else f"better than {name}/{parent}: {out['better']['detail']}"
        prod = steps.promote(name, version, "production", self.gates, self.db, reason=reason)
        out["production"] = prod
        promoted = prod["decision"] in ("accepted", "already")
        out["promoted"] = promoted
        out["why"] = reason if promoted else f"production gates refused: {prod['reason']}"
        return out

    def _serve(self, model_ref: str, project: str | None = None):
        from llmops.serve.app import create_app
        from llmops.serve.server import ServerThread

        # In-process simulated traffic: no per-key rate limit (the users are the loop itself).
        app = create_app(model_ref, db_url=self.db, max_batch_size=16, max_wait_ms=20, seed=self.s.seed,
                         default_max_tokens=self.s.max_tokens, rate_limit_per_s=None, feedback_project=project)
        return ServerThread(app)

    def _collect_feedback(self) -> dict[str, Any]:
        from llmops.loop import rater_queue, raters

        s = self.s
        records = self._records(s.traffic_splits, s.traffic_requests)
        keys = raters.create_rater_keys(self.db, s.n_raters)
        # overlap k = the number of raters: every rater still judges every item, now through assignment
        project = rater_queue.ensure_project(self.db, rater_queue.project_spec(f"{s.name}-feedback", s.n_raters))
        with self._serve(f"registry:{s.name}@production", project["name"]) as srv:
            with tqdm(total=len(records), desc="simulated users", unit="req", leave=False) as bar:
                served = raters.send_traffic(srv.url, records, s.choices, s.max_tokens, s.temperature, s.seed,
                                             progress=bar, client_token=raters.create_client_key(self.db))
            with tqdm(total=len(keys), desc="simulated raters", unit="rater", leave=False) as bar:
                counts = rater_queue.work(srv.url, project["name"], served, keys, progress=bar)
        versions = sorted({x.model_version for x in served})
        return {"simulated": True, "served_model": f"registry:{s.name}@production", "model_versions": versions,
                "project": project["name"], "overlap_k": project["overlap_k"],
                "requests": len(served), "responses": sum(len(x.response_ids) for x in served), **counts,
                "policy": "SIMULATED raters: rating 1-5 from ROUGE-L buckets vs the reference first sentence "
                          f"(edges {raters.BASE_EDGES}, shifted per rater by {raters.RATER_SHIFTS[:s.n_raters]}); "
                          "comparison prefers the higher ROUGE-L; the first rater corrects the weakest response "
                          "with the reference (labelled simulated)"}

    def _eval_v2(self, v1: int, v2: int, facts: dict[str, Any]) -> dict[str, Any]:
        res = self._eval("v2", self._ref(v2))
        res["vs_v1"] = steps.compare(facts["eval_v1"]["dir"], res["dir"])
        from llmops.eval.reward_winrate import reward_vs_metric, reward_winrate_dirs

        win = reward_winrate_dirs(facts["reward"]["final"], facts["eval_v1"]["dir"], res["dir"])
        res["reward_winrate"] = {k: win[k] for k in ("score", "ci_low", "ci_high", "p_value", "n", "wins", "losses",
                                                     "ties", "mean_reward_baseline", "mean_reward_candidate")}
        # the reward model is checked, not trusted: held-out accuracy against the raters (pairs of
        # prompts it never saw) and rank agreement with the task metric on the eval responses
        check = reward_vs_metric(win, facts["eval_v1"]["dir"], res["dir"], self.s.metric)
        rm = facts["reward"].get("metrics", {})
        check.update(heldout_pair_accuracy=rm.get("eval_accuracy"), heldout_pairs=rm.get("eval_pairs"),
                     heldout_margin=rm.get("eval_margin"))
        res["reward_check"] = check
        steps.attach_eval(self.s.name, v2, res["dir"], self.db)
        prompts = [json.loads(line)["prompt"] for line in Path(facts["export"]["path"]).read_text().splitlines()]
        if len(prompts) >= 4:  # v2 was trained on production prompts: they are its drift reference
            res["drift_reference_sha256"] = steps.drift_reference(self.s.name, v2, prompts, self.db)
        return res

    def _ab_quality(self, v1: int, v2: int) -> dict[str, Any]:
        """Both versions answer the same prompts; SIMULATED raters rate them and compare them head to head."""
        import httpx

        from llmops.feedback.queries import quality_by_model
        from llmops.loop import raters

        s = self.s
        records = self._records("validation", s.ab_prompts)
        keys = raters.create_rater_keys(self.db, s.n_raters)
        answers = {}
        for version in (v1, v2):
            with self._serve(self._ref(version)) as srv:
                served = raters.send_traffic(srv.url, records, 1, s.max_tokens, 0.0, s.seed,
                                             client_token=raters.create_client_key(self.db))
                raters.rate(srv.url, served, keys, compare=False)
                answers[version] = served
        service = _service_key(self.db)
        from llmops.feedback.api.app import create_app as feedback_app
        from llmops.serve.server import ServerThread

        with ServerThread(feedback_app(self.db, migrate=False)) as srv, httpx.Client(base_url=srv.url) as client:
            items = []
            for a, b in zip(answers[v1], answers[v2]):
                body = {"prompt": a.prompt, "metadata": {"source": "llmops.loop.ab", "simulated": True},
                        "responses": [{"text": a.texts[0], "model": self._ref(v1), "model_version": f"{s.name}/{v1}"},
                                      {"text": b.texts[0], "model": self._ref(v2), "model_version": f"{s.name}/{v2}"}]}
                resp = client.post("/v1/items", json=body, headers={"Authorization": f"Bearer {service}"})
                resp.raise_for_status()
                made = resp.json()
                items.append(raters.Served(a.prompt, a.reference, made["item_id"], made["response_ids"],
                                           [a.texts[0], b.texts[0]], "ab"))
            raters.rate(srv.url, items, keys, compare=True)
        return {"simulated": True, "prompts": len(records), "by_model": quality_by_model(self.db)}

    def _drift(self, v1: int) -> dict[str, Any]:
        served = steps.served_prompts(self.db, self.out / "feedback" / "production_prompts.jsonl")
        # The simulated users cycle the validation split, so the same prompt is served several times;
        # the drift test assumes independent prompts, so each distinct prompt counts once.
        prompts = list(dict.fromkeys(served))
        report = steps.drift_report(self.s.name, v1, prompts, self.db)
        report["n_served"] = len(served)
        return report

    def _registry_facts(self) -> dict[str, Any]:
        from llmops.registry import api
        from llmops.registry.lineage import build_graph, to_mermaid

        versions = api.list_versions(self.s.name, db_url=self.db)
        history = api.alias_history(self.s.name, db_url=self.db)
        return {
            "versions": [{"ref": v.ref, "version": v.version, "aliases": list(v.aliases), "tags": v.tags,
                          "lineage": {k: v.lineage.get(k) for k in ("base_model_ref", "parent_version",
                                                                     "feedback_snapshot_id", "run_id", "recipe_hash")}}
                         for v in versions],
            "alias_history": [e.to_dict() for e in history],
            "production": api.get_store(self.db).alias_version(self.s.name, "production"),
            "mermaid": to_mermaid(build_graph(versions)),
        }


def _paths(*keys: str):
    """A stage's outputs: the paths under these keys of its result (a re-run redoes it if one is gone)."""
    return lambda result: [Path(result[k]) for k in keys]


def _service_key(db_url: str) -> str:
    """A `service` key for creating the A/B items (the secret lives only in this process)."""
    from llmops.feedback.auth import create_key
    from llmops.feedback.store import FeedbackStore
    import secrets

    with FeedbackStore(db_url).transaction() as session:
        return create_key(session, "service", f"llmops-loop-ab-{secrets.token_hex(3)}").token


def run_quickstart(out_dir: str | Path, fast: bool = False, db_url: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Run the loop; `overrides` replace profile settings (e.g. ``seed=7``, ``improve="dpo"``)."""
    from dataclasses import replace

    from llmops.loop.settings import profile

    return Quickstart(Path(out_dir), replace(profile(fast), **overrides), db_url).run()
