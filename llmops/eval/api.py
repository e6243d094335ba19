"""Public Python API of the evaluation harness (the contract other subsystems use).

- `evaluate(model_ref, suite, out_dir, backend="hf", **overrides) -> dict` writes
  results.json + samples.jsonl and returns the results dict.
- `paired_compare(baseline_dir, candidate_dir) -> {metric: {...}}` tests whether the
  candidate differs from the baseline on the same suite, from the saved statistics:
  delta, its 95% interval, the raw and Holm-corrected p-values (over the suite's metrics)
  and the direction. Token-level metrics of models with different tokenizers are refused.
- `bootstrap_compare(...)`: the paired bootstrap replicates the registry's gates test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from llmops.errors import DataError
from llmops.eval.metrics import metric_from_spec
from llmops.eval.stats import bootstrap_delta_replicates, direction, holm, paired_test


def evaluate(model_ref: str, suite: str | Path, out_dir: str | Path, backend: str = "hf", **overrides: Any) -> dict:
    """Evaluate a model on a suite (see `llmops.eval.runner.run_suite` for the overrides)."""
    from llmops.eval.runner import run_suite

    return run_suite(model_ref, suite, out_dir, backend=backend, **overrides)


def load_results(run_dir: str | Path) -> tuple[dict, list[dict]]:
    """(results.json, samples.jsonl rows) of an eval output directory."""
    run_dir = Path(run_dir)
    path = run_dir / "results.json"
    if not path.is_file():
        raise DataError(f"{run_dir}: no results.json (not an `llmops eval run` output directory)")
    results = json.loads(path.read_text())
    with (run_dir / "samples.jsonl").open(encoding="utf-8") as fh:
        samples = [json.loads(line) for line in fh if line.strip()]
    return results, samples


def _paired_rows(baseline_dir: str | Path, candidate_dir: str | Path):
    base, base_rows = load_results(baseline_dir)
    cand, cand_rows = load_results(candidate_dir)
    b_prov, c_prov = base["provenance"], cand["provenance"]
    if (b_prov["suite_hash"], b_prov["dataset_fingerprint"]) != (c_prov["suite_hash"], c_prov["dataset_fingerprint"]):
        raise DataError(f"{baseline_dir} and {candidate_dir} were evaluated on different suites or data: not paired")
    if [r["index"] for r in base_rows] != [r["index"] for r in cand_rows]:
        raise DataError(f"{baseline_dir} and {candidate_dir} hold different samples: not paired")
    same_tokenizer = b_prov.get("tokenizer_hash") == c_prov.get("tokenizer_hash")
    for name, info in base["metrics"].items():
        if name not in cand["metrics"]:
            continue
        if info.get("tokenizer_dependent") and not same_tokenizer:
            yield name, info, None, None, None  # refused: counted in each model's own tokens
            continue
        a = np.asarray([r["stats"][name] for r in base_rows])
        b = np.asarray([r["stats"][name] for r in cand_rows])
        yield name, info, metric_from_spec(info["spec"]), a, b


def _refusal(info: dict[str, Any]) -> dict[str, Any]:
    return {"refused": "counted in each model's own tokens and the tokenizers differ; compare a byte- or "
                       "word-level metric (byte_perplexity, bits_per_byte, word_perplexity)",
            "higher_is_better": info["higher_is_better"]}


def bootstrap_compare(
    baseline_dir: str | Path, candidate_dir: str | Path, n_resamples: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Per metric: scores, delta and its paired bootstrap replicates (``deltas``).

    The comparison the registry's promotion gates are given (non-inferiority with a
    margin, superiority with Holm's correction: `llmops.registry.stats`).
    """
    out: dict[str, dict[str, Any]] = {}
    for name, info, metric, a, b in _paired_rows(baseline_dir, candidate_dir):
        if metric is None:
            out[name] = _refusal(info)
            continue
        score_a, score_b, deltas = bootstrap_delta_replicates(
            a, b, lambda s, m=metric, o=name: m.reduce(o, s), n_resamples, seed)
        out[name] = {"baseline": score_a, "candidate": score_b, "delta": score_b - score_a,
                     "higher_is_better": info["higher_is_better"], "n": len(a), "test": "paired_bootstrap",
                     "n_resamples": n_resamples, "seed": seed, "deltas": deltas.tolist()}
    return out


def paired_compare(
    baseline_dir: str | Path, candidate_dir: str | Path, method: str = "bootstrap", n_resamples: int = 1000,
    seed: int = 0, alpha: float = 0.05,
) -> dict[str, dict[str, Any]]:
    """Paired significance test per metric: McNemar for binary outcomes (exact match,
    accuracy), otherwise paired bootstrap (``method="bootstrap"``) or approximate
    randomisation (``"randomization"``) over per-sample sufficient statistics; Holm's
    correction across the suite's metrics and a direction per metric."""
    out: dict[str, dict[str, Any]] = {}
    for name, info, metric, a, b in _paired_rows(baseline_dir, candidate_dir):
        if metric is None:
            out[name] = _refusal(info)
            continue
        res = paired_test(a, b, lambda s, m=metric, o=name: m.reduce(o, s), info["binary"], method, n_resamples, seed)
        out[name] = {
            "baseline": res.baseline, "candidate": res.candidate, "delta": res.delta, "p_value": res.p_value,
            "test": res.test, "higher_is_better": info["higher_is_better"], "n": res.n, **res.detail,
        }
    tested = {name: r["p_value"] for name, r in out.items() if "p_value" in r}
    for name, p_adj in holm(tested).items():
        r = out[name]
        r.update(p_holm=p_adj, direction=direction(r["delta"], p_adj, r["higher_is_better"], alpha), alpha=alpha)
    return out
