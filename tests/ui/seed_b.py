"""A small, real dataset for the registry, monitoring and feedback pages (built through the public APIs)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np


def _model_dir(path: Path, content: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "tag": content}))
    (path / "model.safetensors").write_text(content)
    return path


def _eval_dir(path: Path, sha: str, score: float) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    metrics = {"rougeL": {"score": score, "ci_low": score - 0.04, "ci_high": score + 0.04, "n": 40}}
    (path / "results.json").write_text(json.dumps({"suite": "docstring_summary", "metrics": metrics,
                                                   "provenance": {"artifact_hash": sha}}))
    (path / "samples.jsonl").write_text("")
    return path


def seed_registry(url: str, root: Path) -> None:
    """demo/1 (from builtin:tiny) and demo/2 (fine-tuned from 1) with full lineage; demo/2 has an eval."""
    from llmops.registry import api

    lin = {"base_model_ref": "builtin:tiny", "recipe_hash": "abc123", "run_id": "run-v1",
           "dataset_fingerprints": {"train": "fp-train-1"}}
    api.register_version("demo", _model_dir(root / "m1", "one"), lineage=lin, db_url=url, tags={"team": "nlp"})
    mv2 = api.register_version("demo", _model_dir(root / "m2", "two"),
                               lineage={**lin, "base_model_ref": "builtin:tiny", "parent_version": 1, "run_id": "run-v2",
                                        "feedback_snapshot_id": "snap-1"}, db_url=url)
    api.attach_eval("demo", 2, _eval_dir(root / "ev2", mv2.sha256, 0.31), db_url=url)


def seed_feedback(url: str) -> None:
    """Served items rated by two raters, one critique."""
    from llmops.feedback.store import FeedbackStore
    from llmops.monitor.synthetic import prompts

    fb = FeedbackStore(url)
    raters = [fb.rater("rita"), fb.rater("rob")]
    rng = np.random.default_rng(1)
    for k, p in enumerate(prompts(rng, 30, 30, 7)):
        created = fb.create_item(p, [{"text": f"answer {k}", "model": "registry:demo@production",
                                      "model_version": "demo/1"},
                                     {"text": f"better answer {k}", "model": "registry:demo@production",
                                      "model_version": "demo/2"}], metadata={"source": "llmops.serve"})
        for j, rid in enumerate(raters):
            fb.add_rating(created.response_ids[0], 2 + (k + j) % 2, rid,
                          critique="misses the return value" if k == 0 and j == 0 else None)
            fb.add_rating(created.response_ids[1], 4, rid)


def seed_project(url: str) -> None:
    """A project with overlap 2: two raters answer every item, one writes a correction."""
    from llmops.feedback.project_store import ProjectStore

    ps = ProjectStore(url)
    ps.create_project({"name": "docstrings", "overlap_k": 2, "guidelines": "Rate how well the summary fits.",
                       "questions": [{"type": "rating", "name": "quality"}]})
    for i in range(3):
        ps.create_item(f"summarise function {i}", [{"text": f"summary {i}a", "model_version": "demo/1"},
                                                    {"text": f"summary {i}b", "model_version": "demo/2"}],
                       project="docstrings")
    for j, name in enumerate(["pat", "sam"]):
        rater = ps.rater(name)
        while (item := ps.next_item("docstrings", rater)) is not None:
            ps.answer("docstrings", item.id, rater,
                      {"ratings": [{"response_id": r.id, "score": 2 + (k + j) % 3} for k, r in enumerate(item.responses)]})
    ps.add_correction(item_response_id(url), "Returns the parsed config as a dict.", ps.rater("pat"))


def item_response_id(url: str) -> int:
    from llmops.feedback.project_store import ProjectStore

    return ProjectStore(url).list_items(limit=1).items[0].responses[0].id


def seed_monitor(url: str, root: Path) -> str:
    """A drift reference for demo/1, a drift alert that fired (an incident) and a finished job; returns its id."""
    from llmops.monitor.alerts import AlertEngine
    from llmops.monitor.drift import DriftConfig, fit_profile, save_profile
    from llmops.monitor.features import simple_tokenize, tokenizer_spec
    from llmops.monitor.jobs import JobSpec, JobStore
    from llmops.monitor.references import store_reference
    from llmops.monitor.rules import load_rules
    from llmops.monitor.synthetic import prompts

    rng = np.random.default_rng(0)
    profile = fit_profile(prompts(rng, 300, 30, 7), simple_tokenize, tokenizer_spec(None),
                          DriftConfig(window_sizes=(20, 50), replicates=200))
    store_reference("demo", 1, profile, url)
    save_profile(profile, root / "ref.json")
    now = datetime.now(timezone.utc)
    (root / "requests.jsonl").write_text("".join(
        json.dumps({"ts": (now - timedelta(minutes=i)).isoformat(), "prompt": p}) + "\n"
        for i, p in enumerate(prompts(rng, 60, 90, 7))))
    (root / "rules.yaml").write_text("scope: ui-test\nrules:\n  - {name: prompt-drift, kind: drift, "
                                     "model: registry:demo@production, reference: ref.json, "
                                     "current: requests.jsonl, window: 6h}\n")
    rules = load_rules(root / "rules.yaml")
    for minutes in (0, 1):
        AlertEngine(rules, url).check(now + timedelta(minutes=minutes))
    store = JobStore(url, root=root / "jobs")
    job_id = store.submit(JobSpec(argv=[sys.executable, "-c", "print('step 1 loss 2.0'); print('done')"],
                                  launcher="template", model="registry:demo@production", max_attempts=1))
    store.tick()
    store.wait(job_id, timeout_s=60)
    return job_id
