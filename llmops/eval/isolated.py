"""Evaluate one model in a process of its own, so everything it held is freed when it ends.

A vLLM engine keeps its accelerator memory (weights, the pre-allocated KV-cache blocks,
CUDA graphs, the CUDA context, worker processes) until its process exits: deleting the
`LLM` object and emptying the CUDA cache does not reliably give it back, and a bench of
several models in one process can run out of memory at the second model. `llmops bench`
therefore evaluates each model through `evaluate_isolated`: a child process
(``python -m llmops.eval.isolated REQUEST OUTCOME``) runs the ordinary evaluation
(`llmops.eval.api.evaluate`, with its result cache), writes results.json/samples.jsonl
into the run directory like any run and its outcome (results or the error) to a file, and
exits. The path is the same for every backend; the parent never loads a model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from llmops import errors
from llmops.errors import UserError


def evaluate_isolated(model_ref: str, suite: str | Path, out_dir: str | Path, backend: str = "hf",
                      **overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(results, process) of evaluating `model_ref` on `suite` in a fresh Python process.

    `results` is the run's results.json; `process` the child's pid, exit code and peak RSS.
    A bad input in the child raises the same error class here, with the child's message.
    """
    request = {"model": str(model_ref), "suite": str(suite), "out_dir": str(out_dir), "backend": backend,
               "overrides": overrides}
    try:
        payload = json.dumps(request)
    except TypeError as exc:
        raise UserError(f"options for an evaluation in its own process must be JSON values: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="llmops-isolated-") as tmp:
        req, outcome = Path(tmp) / "request.json", Path(tmp) / "outcome.json"
        req.write_text(payload)
        pid, code = run_child([sys.executable, "-m", "llmops.eval.isolated", str(req), str(outcome)])
        done = json.loads(outcome.read_text()) if outcome.is_file() else None
    where = f"evaluating {model_ref} on {suite} in its own process (pid {pid})"
    if done is None:
        how = f"killed by signal {-code}" if code < 0 else f"exit {code}"
        raise UserError(f"{where} ended without a result ({how})")
    if "error" in done:
        cls = getattr(errors, done["error"]["type"], None)
        if isinstance(cls, type) and issubclass(cls, UserError):
            raise cls(done["error"]["message"])
        raise RuntimeError(f"{where} failed: {done['error']['type']}: {done['error']['message']}\n"
                           f"{done['error'].get('traceback', '')}")
    return done["results"], {"pid": pid, "exit_code": code, "peak_rss_mb": done["peak_rss_mb"]}


def run_child(cmd: list[str]) -> tuple[int, int]:
    """(pid, exit code) of `cmd` run to its end in a process group of its own.

    Whatever the child started and left behind (a vLLM engine's worker processes, which hold
    accelerator memory) is killed with the group when the child ends, and the whole group is
    stopped when the parent is interrupted. stdout/stderr are the parent's, so progress and
    engine logs stay visible.
    """
    proc = subprocess.Popen(cmd, env=os.environ.copy(), start_new_session=True)
    try:
        code = proc.wait()
    except BaseException:  # Ctrl-C does not reach another session: pass it on, then make sure
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        raise
    finally:
        _signal_group(proc.pid, signal.SIGKILL)  # stragglers left by the child
        if proc.poll() is None:
            proc.wait()
    return proc.pid, code


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):  # the group is empty: nothing left behind
        pass


def _peak_rss_mb() -> float:
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _write(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """Child side: run the request, write the outcome (results or the error), exit."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m llmops.eval.isolated REQUEST.json OUTCOME.json", file=sys.stderr)
        return 2
    request, outcome = json.loads(Path(args[0]).read_text()), Path(args[1])
    from llmops.eval.api import evaluate

    try:
        results = evaluate(request["model"], request["suite"], request["out_dir"], backend=request["backend"],
                           **request["overrides"])
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        _write(outcome, {"error": {"type": type(exc).__name__, "message": str(exc),
                                   "traceback": traceback.format_exc()[-4000:]}})
        return getattr(exc, "exit_code", 1)
    _write(outcome, {"results": results, "peak_rss_mb": _peak_rss_mb()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
