"""Distillation → compression → evaluation → gated promotion, from one YAML file.

    llmops compress --pipeline recipes/compress/distill_int8.yaml

Steps (each recorded in ``<out>/pipeline.json``):
1. train the distillation recipe, registering the student as the next version of `name`
   and pointing the `student_alias` at it;
2. compress the student (`llmops.compress.api.compress`), registered as the version after
   it with lineage (parent version, method, settings);
3. `llmops bench` the student and the compressed model on the suites with a paired test
   and fresh-process footprints, and attach every result to its registry version;
4. promote the compressed version to `promote.alias` through `promote.gates` — e.g. "no
   significant regression against the student" — with the harness's paired test.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmops.config.loader import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DistillStep(_Strict):
    recipe: str = Field(description="Training recipe (relative to this file), usually a `distill` recipe.")
    overrides: list[str] = Field(default_factory=list, description="KEY=VALUE recipe overrides.")


class CompressStep(_Strict):
    method: str = Field(description="A `llmops compress --method` name.")
    settings: dict[str, Any] = Field(default_factory=dict, description="Method settings, e.g. {sparsity: 0.5}.")
    recover_steps: int = Field(0, ge=0, description="Recovery fine-tune steps (pruning only).")
    device: str = Field("cpu", description="cpu or cuda (GPU-only methods refuse on cpu).")


class EvaluateStep(_Strict):
    suites: list[str] = Field(min_length=1, description="Suite YAMLs (relative to this file).")
    limit: int | None = Field(None, gt=0, description="Evaluate only the first N items of each suite.")
    footprint: bool = Field(True, description="Also measure size and memory per model in a fresh process.")
    speed: bool = Field(True, description="Also time each model uncached in a fresh process (`llmops bench --no-speed`: false).")


class PromoteStep(_Strict):
    alias: str = Field(description="Alias the compressed version is promoted to.")
    gates: str = Field(description="Gates file (relative to this file).")


class PipelineConfig(_Strict):
    name: str = Field(description="Registry model name: student and compressed model are its versions.")
    out: str = Field(description="Output directory (relative to this file).")
    student_alias: str = Field("student", description="Alias set on the distilled student (the gates' baseline).")
    distill: DistillStep
    compress: CompressStep
    evaluate: EvaluateStep
    promote: PromoteStep | None = None


def _rel(base: Path, p: str) -> Path:
    """`p` relative to the file's folder, lexically: `recipes/` may be a link into the package,
    and `../../runs` must land beside it in the checkout, not inside the package."""
    import os

    q = Path(p).expanduser()
    return q if q.is_absolute() else Path(os.path.normpath(base / q))


def run_pipeline(path: str | Path, db_url: str | None = None) -> dict[str, Any]:
    """Run every step; a refused promotion is a result (``promotion.decision == "refused"``), not an error."""
    from llmops.compress.api import compress
    from llmops.config import load_recipe
    from llmops.eval.api import bootstrap_compare
    from llmops.eval.bench import run_bench
    from llmops.registry import api as registry
    from llmops.registry.entities import PromotionRefused
    from llmops.train import run as train_run

    path = Path(path).absolute()
    cfg = load_yaml_model(path, PipelineConfig, "pipeline")
    base, out = path.parent, _rel(path.parent, cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    pipeline_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    doc: dict[str, Any] = {"pipeline": str(path), "pipeline_hash": pipeline_hash, "run_id": uuid.uuid4().hex[:12]}

    overrides = [*cfg.distill.overrides, f"output.dir={out / 'distill'}", f"output.register_as={cfg.name}"]
    result = train_run(load_recipe(_rel(base, cfg.distill.recipe), overrides))
    student = result.registered or result.manifest.get("registered")
    student_version = int(str(student).rsplit("/", 1)[1])
    registry.set_alias(cfg.name, cfg.student_alias, student_version, reason="distilled student", db_url=db_url)
    doc["distill"] = {"run_dir": str(result.run_dir), "registered": student, "metrics": result.metrics}

    c = cfg.compress
    comp = compress(f"registry:{cfg.name}/{student_version}", c.method, out / "compressed", c.settings, device=c.device,
                    recover_steps=c.recover_steps, register_as=cfg.name, db_url=db_url,
                    lineage_extra={"recipe_hash": pipeline_hash, "run_id": doc["run_id"]})
    comp_version = int(str(comp.registered).rsplit("/", 1)[1])
    doc["compress"] = {"registered": comp.registered, **{k: comp.record[k] for k in ("method", "settings", "weights_bytes")}}

    refs = [f"registry:{cfg.name}/{student_version}", f"registry:{cfg.name}/{comp_version}"]
    overrides_eval = {"limit": cfg.evaluate.limit} if cfg.evaluate.limit else {}
    bench = run_bench(refs, [_rel(base, s) for s in cfg.evaluate.suites], out / "bench",
                      labels=[f"student v{student_version}", f"{c.method} v{comp_version}"],
                      footprint=cfg.evaluate.footprint, speed=cfg.evaluate.speed, **overrides_eval)
    for rows in bench["suites"].values():
        for version, row in zip((student_version, comp_version), rows):
            registry.attach_eval(cfg.name, version, row["dir"], db_url=db_url)
    doc["bench"] = str(out / "bench" / "report.md")

    if cfg.promote:
        try:
            rec = registry.promote(cfg.name, comp_version, cfg.promote.alias, _rel(base, cfg.promote.gates),
                                   reason=f"pipeline {path.name}", db_url=db_url, compare=bootstrap_compare)
            doc["promotion"] = {"decision": rec.decision, "alias": cfg.promote.alias, "version": comp_version}
        except PromotionRefused as exc:
            doc["promotion"] = {"decision": "refused", "alias": cfg.promote.alias, "version": comp_version,
                                "why": str(exc)}
    (out / "pipeline.json").write_text(json.dumps(doc, indent=1, default=str))
    return doc
