"""The iterative retraining job of `llmops loop` (config `retrain.iterative`).

Instead of one run of `retrain.recipe` on the feedback export, the job runs K on-policy
rounds (`llmops.loop.iterative.run_rounds`) in its own process:

* the prompt pool is a snapshot of the production prompts the loop writes before each tick
  (`production_prompts.path`), taken once per incident (`snapshot_pool`), so a retried job
  samples the same prompts;
* each round samples the current policy (round 0: the production version), scores the
  answers with the reward model `retrain.iterative.judge` (production prompts have no
  reference answers, so the simulated raters cannot judge them), and runs `retrain.recipe`
  + `retrain.overrides` with ``data.train=<round data>``, ``model.adapter=<current policy>``
  and ``output.dir=<state_dir>/incidents/<id>/iterative/round_<k>/run``;
* rounds before the last register as ``<model>-rounds`` (so the result's lineage chains
  back to production through them); the last registers as ``<model>`` and is the candidate
  the loop then evaluates and sends through the gates exactly as a single run's.

Resume: a retried attempt (or a job restarted after the machine died) skips every round that
finished (``round_<k>/round.json``), reuses a round's samples and data once written, and
resumes the interrupted round's training from its checkpoint; each round's run is registered
at most once (found again by its run id). The job ends by writing ``result.json``, which the
loop reads back (`finished`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from llmops.errors import ConfigError
from llmops.loop.iterative import rounds_model
from llmops.loop.progress import write_json_atomic, write_text_atomic

PLAN, RESULT = "plan.json", "result.json"


def snapshot_pool(production_prompts: Path, out: Path) -> dict[str, Any]:
    """The distinct prompts of the production prompts file (first occurrence kept), copied to `out`."""
    seen: dict[str, None] = {}
    if production_prompts.exists():
        for line in production_prompts.read_text().splitlines():
            prompt = json.loads(line).get("prompt") if line.strip() else None
            if isinstance(prompt, str) and prompt.strip():
                seen.setdefault(prompt, None)
    write_text_atomic(out, "".join(json.dumps({"prompt": p}) + "\n" for p in seen))
    return {"path": str(out), "n_prompts": len(seen), "source": str(production_prompts)}


def submit(jobs, cfg, work: Path, production_version: int, pool: dict[str, Any], incident_id: int,
           now: datetime) -> str:
    """Write the job's plan and queue the job (its own process; a failed attempt is retried and resumes).

    As the single run's `llmops train`, the job registers in the database its environment
    names (`llmops loop` sets ``LLMOPS_DATABASE_URL`` to its own): no URL, which may hold a
    password, is written to the plan or the jobs table."""
    from llmops.monitor.jobs import JobSpec

    it, name = cfg.retrain.iterative, cfg.model
    out = work / "iterative"
    plan = {"model": name, "recipe": cfg.retrain.recipe, "overrides": list(cfg.retrain.overrides),
            "start_policy": f"registry:{name}/{production_version}", "pool": pool["path"],
            "iterative": it.model_dump(), "out_dir": str(out)}
    write_json_atomic(out / PLAN, plan)
    argv = [sys.executable, "-m", "llmops.loop.retrain_iterative", str(out / PLAN)]
    spec = cfg.retrain
    return jobs.submit(JobSpec(argv=argv, launcher="local", model=name, incident_id=incident_id, run_dir=str(out),
                               cancel_argv=spec.cancel_command, max_attempts=spec.max_attempts,
                               backoff_s=spec.backoff.total_seconds(),
                               env={"LLMOPS_INCIDENT_ID": str(incident_id)}), now)


def run_plan(plan_path: Path, progress=print) -> dict[str, Any]:
    """Run (or resume) the rounds of a plan; writes and returns the result (the last round's facts)."""
    from llmops.loop import iterative, retrain_jobs, steps
    from llmops.settings import database_url

    plan = json.loads(Path(plan_path).read_text())
    it, name, db = plan["iterative"], plan["model"], database_url()
    out, recipe = Path(plan["out_dir"]), Path(plan["recipe"])
    spec = iterative.IterativeSpec(rounds=it["rounds"], method=it["method"], judge="reward", samples=it["samples"],
                                   temperature=it["temperature"], max_new_tokens=it["max_new_tokens"],
                                   prompts_per_round=it["prompts_per_round"], min_margin=it["min_margin"],
                                   pairs=it["pairs"], min_score=it["min_score"], seed=it["seed"])
    pool = [json.loads(line) for line in Path(plan["pool"]).read_text().splitlines() if line.strip()]

    def train_round(k: int, policy: str, data: Path, last: bool) -> dict[str, Any]:
        register_as = name if last else rounds_model(name)
        overrides = [*plan["overrides"], f"output.dir={out / f'round_{k}' / 'run'}", f"output.register_as={register_as}",
                     f"data.train={data}", f"model.adapter={policy}"]
        trained = steps.train(recipe, overrides)  # resumes from a checkpoint, or returns a completed run as is
        version = retrain_jobs.ensure_registered(trained, recipe, overrides, register_as, db)  # once per run id
        return iterative.with_selection({**trained, "registered": f"registry:{register_as}/{version}"})

    result = iterative.run_rounds(spec, plan["start_policy"], pool, iterative.reward_judge(it["judge"]), train_round,
                                  out, progress=progress, resume=True)
    write_json_atomic(out / RESULT, result)
    return result


def finished(work: Path) -> dict[str, Any]:
    """The result a succeeded job wrote: the last round's training facts plus ``iterative`` (every round)."""
    path = work / "iterative" / RESULT
    if not path.exists():
        raise ConfigError(f"the iterative retraining job succeeded but wrote no {path}")
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m llmops.loop.retrain_iterative PLAN.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = run_plan(Path(argv[0]), progress=lambda text: print(text, flush=True))
    print(json.dumps({"registered": result.get("registered"),
                      "rounds": [r["registered"] for r in result["iterative"]["rounds"]]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
