"""Building blocks of the loop: thin, idempotent calls into the other subsystems.

Each function does one thing by delegating (training engine, evaluation harness,
registry, feedback export, drift monitor), is safe to call again after a crash, and
returns a small JSON-able dict of facts for the state file and the report.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from llmops.errors import ConfigError

log = logging.getLogger(__name__)

PRIMARY_SUITE = "docstring_summary"


def project_root() -> Path:
    """The folder holding ``recipes/`` and ``eval/``: the ones shipped inside the package
    (a checkout's top-level ``recipes/`` and ``eval/`` link to the same files)."""
    from llmops.resources import path

    return path()


# ---------------------------------------------------------------- training


def train(recipe: Path, overrides: list[str]) -> dict[str, Any]:
    """Run a recipe into its ``output.dir`` (resuming or returning a finished run)."""
    from llmops.config import load_recipe
    from llmops.eval.in_training import generation_validator
    from llmops.train import run

    loaded = load_recipe(recipe, overrides)
    result = run(loaded, resume=True, generation_validator=generation_validator)  # fresh start when nothing to resume
    manifest = result.manifest
    return {
        "recipe": str(recipe), "overrides": overrides, "run_dir": str(result.run_dir),
        "final": str(result.final_dir), "steps": result.steps, "metrics": result.metrics,
        "registered": result.registered or manifest.get("registered"), "run_id": manifest.get("run_id"),
        "recipe_hash": manifest.get("recipe_hash"), "feedback_snapshot_id": manifest.get("feedback_snapshot_id"),
        "wall_time_s": manifest.get("wall_time_s"),
    }


def registered_version(train_facts: dict[str, Any], name: str, db_url: str) -> int:
    """The registry version a training run registered, found by its run id if the manifest missed it."""
    from llmops.registry import api

    ref = train_facts.get("registered")
    if ref:
        return int(str(ref).rsplit("/", 1)[1])
    for mv in api.list_versions(name, db_url=db_url):
        if mv.lineage.get("run_id") == train_facts["run_id"]:
            return mv.version
    raise ConfigError(f"run {train_facts['run_dir']} did not register a version of `{name}`")


# ---------------------------------------------------------------- evaluation


def evaluate(model_ref: str, suite: Path, out_dir: Path, limit: int, max_new_tokens: int) -> dict[str, Any]:
    """Evaluate (reusing a finished result directory for the same model and settings)."""
    from llmops.eval.api import evaluate as run_eval

    results_path = out_dir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else None
    if results is None or results.get("model") != model_ref or results.get("n_samples") != limit:
        results = run_eval(model_ref, suite, out_dir, limit=limit, max_new_tokens=max_new_tokens)
    metrics = {k: {f: v[f] for f in ("score", "ci_low", "ci_high")} for k, v in results["metrics"].items()}
    return {"model": model_ref, "dir": str(out_dir), "suite": results["suite"], "n": results["n_samples"],
            "metrics": metrics, "seconds": results["timings"].get("total_seconds")}


def compare(baseline_dir: str | Path, candidate_dir: str | Path) -> dict[str, Any]:
    """Paired test per metric (the harness's `paired_compare`)."""
    from llmops.eval.api import paired_compare

    return {k: {f: v[f] for f in ("baseline", "candidate", "delta", "p_value", "test")}
            for k, v in paired_compare(baseline_dir, candidate_dir).items() if "refused" not in v}


def attach_eval(name: str, version: int, results_dir: str | Path, db_url: str) -> None:
    """Attach results to a version unless the same results are attached already."""
    from llmops.registry import api

    store = api.get_store(db_url)
    results = json.loads((Path(results_dir) / "results.json").read_text())
    for ev in store.evals(name, version):
        if ev.suite == results["suite"] and ev.metrics == results["metrics"]:
            return
    api.attach_eval(name, version, results_dir, db_url=db_url)


# ---------------------------------------------------------------- promotion


def promote(name: str, version: int, alias: str, gates: Path, db_url: str, reason: str,
            actor: str = "llmops-loop") -> dict[str, Any]:
    """Move `alias` to `version` through the gates; a refusal is a result, not an error."""
    from llmops.eval.api import bootstrap_compare
    from llmops.registry import api
    from llmops.registry.entities import PromotionRefused

    current = api.get_store(db_url).alias_version(name, alias)
    if current == version:
        return {"alias": alias, "version": version, "decision": "already", "reason": f"{name}/{version} holds {alias}"}
    try:
        record = api.promote(name, version, alias, gates, actor=actor, reason=reason, db_url=db_url,
                             compare=bootstrap_compare)
    except PromotionRefused as exc:
        return {"alias": alias, "version": version, "decision": "refused", "reason": str(exc),
                "rules": exc.report.get("results", [])}
    return {"alias": alias, "version": version, "decision": record.decision, "reason": reason,
            "rules": record.report.get("results", []), "previous": current}


def is_better(comparison: dict[str, Any], metric: str, min_delta: float) -> tuple[bool, str]:
    """Whether the candidate beats the baseline on `metric` by more than `min_delta` (point estimate)."""
    row = comparison.get(metric)
    if row is None:
        return False, f"no paired result for `{metric}`"
    verdict = row["delta"] > min_delta
    why = (f"{metric} {row['baseline']:.4f} -> {row['candidate']:.4f} (delta {row['delta']:+.4f}, "
           f"p={row['p_value']:.3g}, {row['test']}); required delta > {min_delta:g}")
    return verdict, why


# ---------------------------------------------------------------- feedback and drift


def export_preferences(db_url: str, out: Path, strategy: str = "best_vs_worst",
                       project: str | None = None) -> dict[str, Any]:
    """Preference pairs as TRL JSONL (only the items of `project` when given)."""
    from llmops.feedback.exports.filters import ExportFilters
    from llmops.feedback.exports.run import export

    result = export(db_url, "trl-preference", out, output="jsonl", strategy=strategy,
                    filters=ExportFilters(project=project))
    return {"path": str(result.path), "meta": str(result.meta_path), "snapshot_id": result.snapshot_id,
            "n_rows": result.n_rows, "agreement": result.agreement, "strategy": strategy, "project": project}


def export_best_responses(db_url: str, out: Path, min_rating: float) -> dict[str, Any]:
    """Each rated item's best response as SFT data (see `llmops.feedback.best_responses`)."""
    from llmops.feedback.best_responses import export_best_responses as run_export

    result = run_export(db_url, out, min_rating=min_rating)
    return {"path": str(result.path), "snapshot_id": result.snapshot_id, "n_rows": len(result.rows),
            "n_items_rated": result.n_items_rated, "params": result.params}


def served_prompts(db_url: str, out: Path, since=None, limit: int = 5000) -> list[str]:
    """Prompts the serving endpoint recorded (newest `limit`), also written to `out` as JSONL."""
    from llmops.feedback.queries import served_prompts as query_served_prompts

    prompts = query_served_prompts(db_url, since=since, limit=limit)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    return prompts


def drift_reference(name: str, version: int, prompts: list[str], db_url: str) -> str:
    """Fit the drift profile of a version's training prompts once and store it with the version."""
    from llmops.monitor.drift import fit_profile
    from llmops.monitor.features import simple_tokenize, tokenizer_spec
    from llmops.monitor.references import load_reference, store_reference
    from llmops.errors import DataError

    try:
        return load_reference(name, version, db_url)["sha256"]
    except DataError:
        pass
    profile = fit_profile(prompts, simple_tokenize, tokenizer_spec(None), source=f"{name}/{version} training prompts")
    return store_reference(name, version, profile, db_url)


def drift_report(name: str, version: int, prompts: list[str], db_url: str) -> dict[str, Any]:
    from llmops.monitor.drift import compare as drift_compare
    from llmops.monitor.references import load_reference

    profile = load_reference(name, version, db_url)
    report = drift_compare(profile, prompts)
    report["reference_token_length"] = profile["features"]["token_length"]["sample"]
    from llmops.monitor.features import simple_tokenize

    report["current_token_length"] = [len(simple_tokenize(p)) for p in prompts]
    return report
