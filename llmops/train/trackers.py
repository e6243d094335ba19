"""Experiment trackers (TensorBoard, MLflow, W&B) named the way users look for runs.

``output.project`` names the W&B project / MLflow experiment (TensorBoard: the folder
under ``RUN_DIR/trackers``), the llmops run id names the tracker run, and ``--resume``
continues the *same* tracker run: the MLflow run id (which MLflow chooses) is kept in
the manifest under ``trackers``; the W&B run id is the llmops run id.
MLflow's backend is MLflow's own setting, ``MLFLOW_TRACKING_URI``: ``sqlite:///mlflow.db``
locally or a server (MLflow 3 refuses its old ``./mlruns`` file store unless
``MLFLOW_ALLOW_FILE_STORE=true``).
"""

from __future__ import annotations

import json
import re
from typing import Any

DEFAULT_PROJECT = "llmops"


def tracker_config(flat: dict[str, Any]) -> dict[str, Any]:
    """Recipe values as scalars: TensorBoard's hparams refuse None and lists."""
    return {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in flat.items()}


def init_kwargs(log_with: list[str], run_id: str, remembered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-tracker keyword arguments for ``accelerator.init_trackers``."""
    kwargs: dict[str, dict[str, Any]] = {}
    if "mlflow" in log_with:
        previous = remembered.get("mlflow_run_id")
        kwargs["mlflow"] = {"run_id": previous} if previous else {"run_name": run_id}
    if "wandb" in log_with:
        kwargs["wandb"] = {"name": run_id, "id": wandb_id(run_id), "resume": "allow"}
    return kwargs


def wandb_id(run_id: str) -> str:
    """W&B run ids may not contain ``/\\#?%:``; llmops ids normally contain none of them."""
    return re.sub(r"[/\\#?%:]", "-", run_id)


def remember(accelerator: Any) -> dict[str, Any]:
    """Ids of the tracker runs just started, to be stored in the manifest for `--resume`."""
    out: dict[str, Any] = {}
    if not accelerator.is_main_process:
        return out
    for tracker in accelerator.trackers:
        if tracker.name == "mlflow":
            out["mlflow_run_id"] = tracker.active_run.info.run_id
        elif tracker.name == "wandb":
            out["wandb_run_id"] = tracker.run.id
    return out
