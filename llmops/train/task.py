"""The task interface: what a recipe plugs into the training engine.

The engine (`llmops.train.engine`) owns everything that must be identical for every
kind of training: accelerate setup, the data order and its sharding across processes,
gradient accumulation normalised by the number of supervised *units* across the whole
accumulation window and all processes, clipping, the LR schedule, mixed precision,
evaluation, checkpoints (incl. the RNG state of every process and the data position),
`keep_last`, resume, the manifest, `metrics.jsonl`, trackers and cleanup.

A *task* owns only what differs between recipes: which models exist, how examples are
built and collated, and the loss. It is composed into the engine, not subclassed.

How to add a task (e.g. `reward`, `dpo`, `rloo`):

1. Write ``llmops/train/tasks/<name>.py`` with a class implementing `Task` below, and
   add ``"<name>": "llmops.train.tasks.<name>:<Class>"`` to `llmops.train.tasks.TASKS`.
   The recipe's ``recipe: <name>`` key selects it; the class is built with the validated
   `Recipe` (``Class(recipe)``) and must not touch accelerate before `setup`.
2. `setup(ctx)` loads the tokenizer and the trainable model (use
   `llmops.train.modeling.load_trainable_causal_lm` for a causal LM with optional LoRA),
   loads frozen helpers (teacher, reference policy) and places them with
   `ctx.prepare_frozen(model)` (eval mode, no grad, on the right device, never wrapped
   in DDP), and builds the train / validation examples. It runs in every process after
   the seed is set, so random initialisations agree across ranks.
3. `collate(examples)` turns a list of examples into a dict of CPU tensors; the engine
   moves it to the device.
4. `count_units(batch)` returns the number of supervised units in a micro-batch *before*
   the forward pass (SFT: label tokens that are not -100; preference: pairs; RLOO:
   sampled responses). The engine sums it over the accumulation window and all
   processes to normalise the loss: this is what keeps gradient accumulation exact.
5. `compute_loss(model, batch)` returns a `LossOutput`: the loss **summed** (not
   averaged) over the units of the micro-batch, the unit count (must equal
   `count_units`; the engine checks) and optional metrics, each also a **sum** over the
   units (e.g. the number of correctly ranked pairs); the engine logs ``sum / units``
   across the logging interval and all processes. The same function serves validation
   (under ``torch.no_grad`` and ``model.eval()``).
6. `save_final(model, out_dir, is_main_process)` writes an HF-loadable artifact of the
   unwrapped model (plus tokenizer and the ``llmops_model.json`` sidecar) and returns a
   small dict for the manifest. `llmops.train.modeling.save_causal_lm` does this for
   causal LMs, full or LoRA. The model is always whole: under FSDP / ZeRO-3 the engine
   gathers the shards once and hands the main process a plain CPU copy
   (`llmops.train.sharded`), calling `save_final` on that process only.
7. `describe()` returns provenance for the manifest and the registry lineage:
   ``base_model_ref``, ``base_model_hash``, ``dataset_fingerprints`` and any extras
   (e.g. ``feedback_snapshot_id``, ``teacher_ref``).

Optional: a ``unit_name`` attribute (default ``"tokens"``) names the units in
``metrics.jsonl`` (``tokens``, ``tokens_per_s``); a preference task might say ``"pairs"``.
Optional: ``collate_at(examples, position)`` replaces `collate` for training micro-batches
and also receives the micro-batch position (the same on every rank for one global batch,
whatever the world size); RLOO keys its sampling noise on it.

The engine never looks inside examples or batches except through these methods, so a
task may use any example type (token dicts, preference pairs, prompts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # heavy imports stay out of `llmops --help`
    import torch
    from accelerate import Accelerator

    from llmops.config.schema import Recipe
    from llmops.train.modeling import RecipeModels


@dataclass
class LossOutput:
    """Loss of one micro-batch: a sum over its units, never a mean.

    `metrics` values are sums over the same units (tensors or floats); the engine
    reduces them over the logging interval and all processes and logs ``sum / units``.
    """

    loss_sum: "torch.Tensor"
    n_units: int
    metrics: Mapping[str, "torch.Tensor | float"] = field(default_factory=dict)


@dataclass
class TaskContext:
    """What the engine hands a task at setup time."""

    recipe: "Recipe"
    accelerator: "Accelerator"
    run_dir: Path
    prepare_frozen: Callable[["torch.nn.Module"], "torch.nn.Module"]
    # `model.base`/`model.adapter` resolved once by the engine (None: tasks resolve them).
    models: "RecipeModels | None" = None

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process


@runtime_checkable
class Task(Protocol):
    """A training objective the engine can run; see the module docstring."""

    name: str

    @property
    def model(self) -> "torch.nn.Module":
        """The trainable model (set by `setup`); the engine prepares and optimises it."""
        ...

    def setup(self, ctx: TaskContext) -> None:
        """Load tokenizer and models, build train/validation examples."""
        ...

    def train_examples(self) -> Sequence[Any]:
        """Training examples; the engine orders, shards and batches them."""
        ...

    def eval_examples(self) -> Sequence[Any] | None:
        """Held-out examples for validation loss, or None."""
        ...

    def collate(self, examples: list[Any]) -> dict[str, Any]:
        """A micro-batch of CPU tensors from a list of examples."""
        ...

    def count_units(self, batch: Mapping[str, Any]) -> int:
        """Supervised units in a collated micro-batch, known before the forward pass."""
        ...

    def compute_loss(self, model: "torch.nn.Module", batch: Mapping[str, Any]) -> LossOutput:
        """Summed loss, unit count and summed metrics of one micro-batch."""
        ...

    def save_final(self, model: "torch.nn.Module", out_dir: Path, is_main_process: bool) -> dict[str, Any]:
        """Write the final HF-loadable artifact; return a summary for the manifest."""
        ...

    def describe(self) -> dict[str, Any]:
        """Provenance: base_model_ref, base_model_hash, dataset_fingerprints, extras."""
        ...
