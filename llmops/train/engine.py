"""The training loop: setup, train, save, cleanup — one readable pass on accelerate.

`Engine.run()` reads top to bottom:

1. **setup** — accelerator (world size verified), run directory (refuses to overwrite a
   run unless resuming), seed, the task (models, examples), optimizer and schedule,
   ``accelerator.prepare``, then either a checkpoint (weights, optimizer, scheduler,
   RNG of every process, data position) or a fresh per-process seed;
2. **train** — each optimizer step consumes ``grad_accum`` micro-batches per process;
   the loss of each is its *sum* over supervised units divided by the number of units
   in the whole window on all processes (so accumulation and data parallelism give the
   gradient of one big batch, whatever the sequence lengths), then clipping, AdamW,
   the schedule; logging, validation and checkpoints every N steps;
3. **save** — ``final/`` written to a temporary name and renamed, manifest, loss plot,
   optional registry version;
4. **cleanup** — ``end_training()`` (trackers, process group) on every exit path.

Everything specific to a recipe lives in its task (`llmops.train.task`).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

import torch

from llmops.config.loader import LoadedRecipe
from llmops.errors import UserError
from llmops.train import checkpoints as ckpt
from llmops.train import manifest as mf
from llmops.train.runs_index import record_run
from llmops.train.accel import is_sharded, make_accelerator, verify_accumulation
from llmops.train.gpu import cast_for_output, maybe_compile
from llmops.train.data_order import DataOrder, digest_indices, eval_shards
from llmops.train.faults import fault_point
from llmops.train.metrics import Interval, WindowStats, as_float, flatten, peak_memory_mb
from llmops.train.modeling import freeze, resolve_recipe_models, write_sidecar
from llmops.train.optim import build_optimizer, build_scheduler
from llmops.train.plots import plot_loss
from llmops.train.publish import register_final, trainable_sha256, write_rank_record
from llmops.train.resume import check_resume_compatible
from llmops.train.selection import BestSelector, check_supported, steps_for_epochs
from llmops.train.sharded import broadcast_str, gather_full_state_dict, materialise, meta_skeleton, sha256_of
from llmops.train.task import LossOutput, Task, TaskContext
from llmops.train.tasks import build_task
from llmops.train.threads import configure_threads

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What `llmops.train.run` returns (everything is also in ``manifest.json``)."""

    run_dir: Path
    final_dir: Path
    status: str
    steps: int
    metrics: dict[str, float]
    manifest: dict[str, Any]
    registered: str | None = None
    resumed_from_step: int | None = None


class StopRun(Exception):
    """Raised by an ``on_eval`` hook to end a run early; the manifest status becomes `status`."""

    def __init__(self, message: str = "stopped early", status: str = "pruned"):
        super().__init__(message)
        self.status = status


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class Engine:
    """One training run of a recipe; see the module docstring for the order of events."""

    def __init__(
        self, loaded: LoadedRecipe, resume: bool = False,
        on_eval: Callable[[int, dict[str, float]], None] | None = None,
        contamination_check: Callable[[Any], dict[str, Any]] | None = None,
        generation_validator: Callable[[Any], Callable[[Any, Any], dict[str, float]] | None] | None = None,
    ):
        self.loaded = loaded
        self.on_eval = on_eval
        self.contamination_check = contamination_check
        self.generation_validator = generation_validator
        self._generate_eval: Callable[[Any, Any], dict[str, float]] | None = None
        self.recipe = loaded.recipe
        self.cfg = loaded.recipe.train
        self.resume = resume
        self.run_dir = Path(self.recipe.output.dir).expanduser().resolve()
        self.accelerator: Any = None
        self.task: Task | None = None
        self.manifest: dict[str, Any] = {}
        self.step = 0
        self.position = 0  # micro-batches consumed per process
        self.units_total = 0
        self.train_seconds = 0.0
        self.resumed_from: int | None = None
        self._hasher = hashlib.sha256()
        self._first_position = 0
        self._samples_seen = 0
        self._last_eval: dict[str, float] = {}
        self._last_train: dict[str, float] = {}

    # ------------------------------------------------------------------ run

    def run(self) -> RunResult:
        """setup → train → save, with cleanup (and a `failed` manifest) on every exit."""
        finished = self._already_completed()
        if finished is not None:
            return finished
        try:
            self.setup()
            self.train()
            return self.save()
        except BaseException as exc:
            self._mark_failed(exc)
            raise
        finally:
            self.cleanup()

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        from accelerate.utils import set_seed

        self.threads = configure_threads()  # before any torch work: see llmops.train.threads
        self.accelerator = acc = make_accelerator(self.recipe, self.run_dir)
        checkpoint = self._prepare_run_dir()
        set_seed(self.cfg.seed)  # identical initialisation (e.g. LoRA matrices) on every rank
        self.task = task = build_task(self.recipe)
        with acc.main_process_first():  # materialises built-ins / hub snapshots once
            models = resolve_recipe_models(self.recipe)
        task.setup(
            TaskContext(
                recipe=self.recipe,
                accelerator=acc,
                run_dir=self.run_dir,
                prepare_frozen=self._prepare_frozen,
                models=models,
            )
        )
        self.unit_name = getattr(task, "unit_name", "tokens")
        self.train_examples = task.train_examples()
        self.eval_examples = task.eval_examples()
        self.order = DataOrder(
            len(self.train_examples),
            self.cfg.batch_size,
            acc.num_processes,
            acc.process_index,
            self.cfg.seed,
            shuffle=self.recipe.data.shuffle,
        )
        if self.cfg.epochs is not None:  # the run's length follows the data (the manifest records it)
            steps = steps_for_epochs(self.cfg.epochs, self.order.batches_per_epoch, self.cfg.grad_accum)
            log.info("train.epochs=%g: %d optimizer steps (replaces max_steps=%d)", self.cfg.epochs, steps, self.cfg.max_steps)
            self.cfg = self.cfg.model_copy(update={"max_steps": steps})
        self.selector = BestSelector.from_config(self.cfg, self.run_dir)
        if self.cfg.generation_eval is not None:  # built by the caller: the harness lives in a layer beside this one
            if self.generation_validator is None:
                raise UserError("train.generation_eval needs the evaluation harness: run through `llmops train` "
                                "or pass generation_validator=llmops.eval.in_training.generation_validator to "
                                "llmops.train.run")
            self._generate_eval = self.generation_validator(self.recipe)
        check_supported(self.selector, acc.distributed_type, bool(self.eval_examples))
        maybe_compile(task.model, self.cfg)
        optimizer = build_optimizer(task.model, self.cfg)
        self.scheduler = build_scheduler(optimizer, self.cfg)
        ckpt.install_trainable_only_hooks(acc)
        # sharded runs save from a meta-device copy taken now, filled at the end (llmops.train.sharded)
        self._skeleton = meta_skeleton(task.model) if is_sharded(acc) and acc.is_main_process else None
        self.model, self.optimizer = acc.prepare(task.model, optimizer)
        verify_accumulation(acc, self.recipe)
        acc.register_for_checkpointing(self.scheduler)
        self.metrics_log = mf.MetricsLog(self.run_dir, acc.is_main_process)
        if checkpoint is not None:
            self._load_checkpoint(checkpoint)
        else:
            self.metrics_log.reset()
            set_seed(self.cfg.seed, device_specific=True)  # different dropout masks per rank
        self._first_position = self.position
        self._record_contamination()
        self._write_manifest(status="running")
        if self.recipe.output.log_with:
            self._start_trackers()

    def _start_trackers(self) -> None:
        """output.project names the project/experiment, the run id the run; --resume continues it."""
        from llmops.train import trackers

        acc, out = self.accelerator, self.recipe.output
        run_id, remembered = self.manifest["run_id"], self.manifest.get("trackers", {})
        acc.init_trackers(
            out.project or trackers.DEFAULT_PROJECT,
            config=trackers.tracker_config(flatten(self.loaded.resolved)),
            init_kwargs=trackers.init_kwargs(list(out.log_with), run_id, remembered),
        )
        self.manifest["trackers"] = {**remembered, **trackers.remember(acc)}
        self._write_manifest(status="running")

    def _already_completed(self) -> RunResult | None:
        """With --resume, a run that already finished is returned as is (idempotent)."""
        existing = mf.read_manifest(self.run_dir)
        if not (self.resume and existing and existing.get("status") == "completed"):
            return None
        self._check_resume_compatible(existing)
        log.info("%s: run already completed; nothing to resume", self.run_dir)
        return RunResult(
            run_dir=self.run_dir,
            final_dir=self.run_dir / "final",
            status="completed",
            steps=existing.get("steps_completed", 0),
            metrics=existing.get("final_metrics", {}),
            manifest=existing,
            registered=existing.get("registered"),
        )

    def _prepare_run_dir(self) -> Path | None:
        """Guard against overwriting a run, clear half-written checkpoints, find the newest one."""
        acc = self.accelerator
        existing = mf.read_manifest(self.run_dir)
        if not self.resume and (existing or ckpt.complete_checkpoints(self.run_dir) or (self.run_dir / "final").exists()):
            raise UserError(
                f"output.dir {self.run_dir} already holds a run"
                + (f" (status {existing.get('status')})" if existing else "")
                + "; pass --resume to continue it or choose another output.dir"
            )
        if existing:
            self._check_resume_compatible(existing)
        self.manifest = existing or {}
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for path in ckpt.remove_incomplete(self.run_dir):
                log.warning("removed a checkpoint left half-written by a killed run: %s", path)
            shutil.rmtree(self.run_dir / ".final.tmp", ignore_errors=True)
        acc.wait_for_everyone()
        latest = ckpt.latest_checkpoint(self.run_dir) if self.resume else None
        if self.resume and latest is None:
            log.warning("%s: no complete checkpoint; starting from step 0", self.run_dir)
        return latest

    def _check_resume_compatible(self, existing: dict[str, Any]) -> None:
        check_resume_compatible(existing.get("recipe", {}), self.loaded.resolved, self.run_dir)

    def _prepare_frozen(self, model: torch.nn.Module) -> torch.nn.Module:
        """Teachers and references: frozen and on the device, never wrapped in DDP or checkpointed."""
        return freeze(model).to(self.accelerator.device)

    def _load_checkpoint(self, path: Path) -> None:
        state = ckpt.read_state(path)
        if state["world_size"] != self.accelerator.num_processes:
            raise UserError(
                f"{path} was written by {state['world_size']} processes but this run has "
                f"{self.accelerator.num_processes}; resume with the same number (the data order depends on it)"
            )
        base_hash = self.task.describe().get("base_model_hash") if self.task else None
        if state.get("base_model_hash") and base_hash and state["base_model_hash"] != base_hash:
            raise UserError(f"{path}: the base model changed since this checkpoint (hash {state['base_model_hash'][:12]}…)")
        if state.get("threads") not in (None, self.threads.threads):
            log.warning(
                "%s was written with %s intra-op threads, this run uses %d: CPU reductions split by thread, so "
                "the resumed weights may differ in the last bits from an uninterrupted run (pass --threads %s "
                "for a bitwise continuation)", path, state["threads"], self.threads.threads, state["threads"],
            )
        self.accelerator.load_state(str(path))
        self.step, self.position = state["step"], state["position"]
        self.units_total, self.train_seconds = state["units_total"], state["train_seconds"]
        self.resumed_from = self.step
        if self.selector is not None:
            self.selector.restore(state.get("selection"))
        self.metrics_log.truncate_after(self.step)
        log.info("resumed from %s (step %d)", path, self.step)

    # ------------------------------------------------------------------ train

    def train(self) -> None:
        cfg = self.cfg
        interval = Interval()
        if cfg.eval_every and self.step == 0 and self.eval_examples:
            self._validate()  # the baseline every later validation compares with
        stopped = False
        while self.step < cfg.max_steps and not stopped:
            t0 = time.perf_counter()
            window = [self.micro_batch(self.position + i) for i in range(cfg.grad_accum)]
            stats = self.forward_backward(window)
            interval.lr = self.scheduler.get_last_lr()[0]
            interval.grad_norm = self.optimizer_step()
            seconds = time.perf_counter() - t0
            interval.add(stats, seconds)
            self.step += 1
            self.position += cfg.grad_accum
            self.train_seconds += seconds
            last = self.step == cfg.max_steps
            checkpoint = bool(cfg.checkpoint_every) and self.step % cfg.checkpoint_every == 0 and not last
            # a checkpoint also flushes the logging interval, so that a resumed run logs
            # exactly the lines (and token totals) of an uninterrupted one
            if self.step % cfg.log_every == 0 or last or checkpoint:
                self._log_train(interval)
                interval = Interval()
            if cfg.eval_every and self.step % cfg.eval_every == 0 and not last:
                stopped = self._validate()
                if stopped and interval.units:  # flush what was trained since the last log line
                    self._log_train(interval)
                if stopped:
                    break
            if checkpoint:
                self.save_checkpoint()
        if self.eval_examples and not stopped:
            self._validate()

    def _validate(self) -> bool:
        """Validate, log, and let `train.select_best` keep the weights; True means stop early."""
        result = self.evaluate()
        if result and self._generate_eval is not None:
            model = self.accelerator.unwrap_model(self.model)
            scores = self._generate_eval(model, getattr(self.task, "tokenizer", None))
            result.update({f"eval_gen_{name}": value for name, value in scores.items()})
        self._log_eval(result)
        if self.selector is None or not result:
            return False
        model = self.accelerator.unwrap_model(self.model)
        return self.selector.observe(self.step, result, model, self.accelerator.is_main_process)

    def micro_batch(self, position: int) -> dict[str, Any]:
        """This process's collated micro-batch number `position`."""
        indices = self.order.batch(position)
        self._hasher.update(digest_indices(indices).encode())
        self._samples_seen += len(indices)
        examples = [self.train_examples[i] for i in indices]
        collate_at = getattr(self.task, "collate_at", None)  # optional: tasks that key randomness on it
        return collate_at(examples, position) if collate_at is not None else self.task.collate(examples)

    def forward_backward(self, window: list[dict[str, Any]]) -> WindowStats:
        """Accumulate the gradient of one window, normalised by its units on all processes."""
        acc, task = self.accelerator, self.task
        counts = [int(task.count_units(batch)) for batch in window]
        total = int(acc.reduce(torch.tensor(sum(counts), device=acc.device), reduction="sum").item())
        # accelerate divides by grad_accum in backward() and DDP averages over processes;
        # undo both so the gradient is sum(loss over units) / total units.
        scale = acc.gradient_accumulation_steps * acc.num_processes / max(total, 1)
        self.model.train()
        loss_sum = torch.zeros((), device=acc.device)
        metrics: dict[str, torch.Tensor] = {}
        for batch, expected in zip(window, counts):
            batch = _to_device(batch, acc.device)
            with acc.accumulate(self.model), acc.autocast():
                out: LossOutput = task.compute_loss(self.model, batch)
                if out.n_units != expected:
                    raise RuntimeError(f"task {task.name}: count_units said {expected}, compute_loss counted {out.n_units}")
                acc.backward(out.loss_sum * scale)
            fault_point("step.backward")
            loss_sum += out.loss_sum.detach().float()
            for k, v in out.metrics.items():
                metrics[k] = metrics.get(k, 0.0) + (v.detach().float() if isinstance(v, torch.Tensor) else v)
        return WindowStats(loss_sum, sum(counts), metrics)

    def optimizer_step(self) -> float | None:
        """Clip, step, schedule, zero; returns the pre-clipping gradient norm."""
        acc = self.accelerator
        max_norm = self.cfg.max_grad_norm if self.cfg.max_grad_norm is not None else float("inf")
        norm = acc.clip_grad_norm_(self.model.parameters(), max_norm)
        self.optimizer.step()
        if not acc.optimizer_step_was_skipped:  # fp16 overflow: keep the schedule in step
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return None if norm is None else as_float(norm)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation loss per unit over the held-out examples, sharded over processes."""
        acc, task, examples = self.accelerator, self.task, self.eval_examples
        if not examples:
            return {}
        self.model.eval()
        names: list[str] = []
        sums = None
        for indices in eval_shards(len(examples), self.cfg.batch_size, acc.num_processes, acc.process_index):
            weight = 1.0 if indices else 0.0  # empty slice: run a forward anyway, count nothing
            batch = _to_device(task.collate([examples[i] for i in indices or [0]]), acc.device)
            with acc.autocast():
                out = task.compute_loss(self.model, batch)
            if sums is None:
                names = sorted(out.metrics)
                sums = torch.zeros(2 + len(names), device=acc.device, dtype=torch.float64)
            values = [out.loss_sum, out.n_units, *(out.metrics[n] for n in names)]
            sums += weight * torch.tensor([as_float(v) for v in values], device=acc.device, dtype=torch.float64)
            fault_point("eval.batch")
        self.model.train()
        sums = acc.reduce(sums, reduction="sum")
        units = max(float(sums[1]), 1.0)
        result = {"eval_loss": float(sums[0]) / units, f"eval_{self.unit_name}": int(sums[1])}
        result.update({f"eval_{n}": float(sums[2 + i]) / units for i, n in enumerate(names)})
        return result

    def _log_train(self, interval: Interval) -> None:
        acc = self.accelerator
        names = sorted(interval.metrics)
        local = [interval.loss_sum, interval.units, *(interval.metrics[n] for n in names)]
        sums = acc.reduce(torch.tensor([as_float(v) for v in local], device=acc.device, dtype=torch.float64), "sum")
        peak = acc.reduce(torch.tensor(peak_memory_mb(), device=acc.device, dtype=torch.float64), "max")
        units = int(sums[1])
        self.units_total += units
        seconds = max(interval.seconds, 1e-9)
        record: dict[str, Any] = {
            "kind": "train",
            "step": self.step,
            "epoch": round(self.position / self.order.batches_per_epoch, 4),
            "loss": float(sums[0]) / max(units, 1),
            "lr": interval.lr,
            "grad_norm": interval.grad_norm,
            self.unit_name: units,
            f"{self.unit_name}_per_s": units / seconds,
            "peak_mem_mb": round(float(peak), 1),
        }
        record.update({n: float(sums[2 + i]) / max(units, 1) for i, n in enumerate(names)})
        self._last_train = record
        self.metrics_log.write(record)
        if self.recipe.output.log_with:
            acc.log({f"train/{k}": v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}, step=self.step)
        if acc.is_main_process:
            log.info(
                "step %d/%d loss %.4f lr %.2e %s/s %.0f",
                self.step, self.cfg.max_steps, record["loss"], record["lr"], self.unit_name, record[f"{self.unit_name}_per_s"],
            )

    def _log_eval(self, result: dict[str, float]) -> None:
        if not result:
            return
        self._last_eval = result
        self.metrics_log.write({"kind": "eval", "step": self.step, **result})
        if self.recipe.output.log_with:
            self.accelerator.log({f"eval/{k}": v for k, v in result.items()}, step=self.step)
        if self.accelerator.is_main_process:
            log.info("step %d eval_loss %.4f", self.step, result["eval_loss"])
        if self.on_eval is not None:
            self.on_eval(self.step, result)

    # ------------------------------------------------------------------ checkpoints and final save

    def save_checkpoint(self) -> Path:
        state = {
            "step": self.step,
            "position": self.position,
            "units_total": self.units_total,
            "train_seconds": self.train_seconds,
            "world_size": self.accelerator.num_processes,
            "threads": self.threads.threads,
            "run_id": self.manifest.get("run_id"),
            "recipe_hash": self.loaded.hash,
            "base_model_hash": self.manifest.get("base_model_hash"),
            "saved_at": mf.now_iso(),
            "selection": None if self.selector is None else self.selector.state.__dict__,
        }
        path = ckpt.save_checkpoint(self.accelerator, self.run_dir, self.step, state)
        if self.accelerator.is_main_process:
            for old in ckpt.prune(self.run_dir, self.cfg.keep_last):
                log.info("removed old checkpoint %s (train.keep_last=%d)", old.name, self.cfg.keep_last)
        self._write_manifest(status="running")
        return path

    def save(self) -> RunResult:
        acc = self.accelerator
        final, tmp = self.run_dir / "final", self.run_dir / ".final.tmp"
        acc.wait_for_everyone()
        if acc.is_main_process:
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        out_dtype = self.recipe.output.dtype
        if is_sharded(acc):  # gathered once: the saved weights and the hash come from it
            full = gather_full_state_dict(acc, self.model)
            # names of the unwrapped model (DeepSpeed's engine prefixes its own with `module.`)
            names = [n for n, p in acc.unwrap_model(self.model).named_parameters() if p.requires_grad]
            digest = sha256_of((n, full[n]) for n in names) if acc.is_main_process else None
            self._write_rank_record(broadcast_str(acc, digest))
            whole = materialise(self._skeleton, full) if acc.is_main_process else None
            summary = self.task.save_final(cast_for_output(whole, out_dtype), tmp, True) if whole is not None else {}
            del full
        else:
            unwrapped = acc.unwrap_model(self.model, keep_fp32_wrapper=False)
            self._write_rank_record(trainable_sha256(unwrapped))
            if self.selector is not None:  # final/ is the best validation's weights, and says so
                acc.wait_for_everyone()
                self.manifest["selection"] = self.selector.load_best_into(unwrapped)
                self._last_eval = dict(self.selector.state.best_metrics or self._last_eval)
            summary = self.task.save_final(cast_for_output(unwrapped, out_dtype), tmp, acc.is_main_process)
        fault_point("final.write")
        acc.wait_for_everyone()
        registered = None
        if acc.is_main_process:
            if (tmp / "llmops_model.json").exists():
                write_sidecar(tmp, {"run_id": self.manifest["run_id"], "recipe_hash": self.loaded.hash})
            if final.exists():
                shutil.rmtree(final)
            tmp.replace(final)
            summary = {k: str(v).replace(str(tmp), str(final)) for k, v in summary.items()}
            self.manifest["final"] = summary
            self._write_manifest(status="completed")
            plot_loss(self.metrics_log.read(), self.run_dir / "loss.png", title=f"{self.recipe.recipe} · {self.run_dir.name}")
            registered = self._register(final)
        acc.wait_for_everyone()
        return RunResult(
            run_dir=self.run_dir,
            final_dir=final,
            status="completed",
            steps=self.step,
            metrics=self._final_metrics(),
            manifest=self.manifest,
            registered=registered,
            resumed_from_step=self.resumed_from,
        )

    def _write_rank_record(self, weights_sha256: str) -> None:
        """Per-process audit (see `llmops.train.publish`): data consumed, weights hash."""
        acc = self.accelerator
        write_rank_record(
            self.run_dir,
            {
                "rank": acc.process_index,
                "world_size": acc.num_processes,
                "device": str(acc.device),
                "first_position": self._first_position,
                "last_position": self.position,
                "samples_seen": self._samples_seen,
                "samples_sha256": self._hasher.hexdigest(),
                "trainable_sha256": weights_sha256,
            },
        )

    def _register(self, final: Path) -> str | None:
        ref = register_final(self.loaded, self.manifest, final)
        if ref:
            self.manifest["registered"] = ref
            self._write_manifest(status="completed")
            log.info("registered %s", ref)
        return ref

    # ------------------------------------------------------------------ manifest

    def _final_metrics(self) -> dict[str, float]:
        out = {}
        if self._last_train:
            out["train_loss"] = self._last_train["loss"]
        out.update(self._last_eval)
        out[self.unit_name] = self.units_total
        out[f"{self.unit_name}_per_s"] = self.units_total / max(self.train_seconds, 1e-9)
        return out

    def _write_manifest(self, status: str) -> None:
        acc = self.accelerator
        m = self.manifest
        if not m.get("run_id"):
            m["run_id"] = mf.new_run_id()
            m["started_at"] = mf.now_iso()
            m["attempts"] = []
        if not getattr(self, "_attempt_recorded", False):
            self._stopwatch = mf.Stopwatch(earlier_s=m.get("wall_time_s", 0.0))
            m["attempts"].append({"started_at": mf.now_iso(), "resumed_from_step": self.resumed_from, "command": mf.command_line()})
            self._attempt_recorded = True
        describe = self.task.describe() if self.task else {}
        m.update(
            {
                "status": status,
                "recipe_name": self.recipe.recipe,
                "description": self.recipe.description,
                "recipe_source": self.loaded.source,
                "overrides": self.loaded.overrides,
                "recipe_hash": self.loaded.hash,
                "recipe": self.loaded.resolved,
                **describe,
                "world_size": acc.num_processes,
                "distributed_type": str(acc.distributed_type).split(".")[-1],
                "mixed_precision": acc.mixed_precision,
                "device": str(acc.device),
                "threads": self.threads.as_dict(),
                "versions": mf.library_versions(),
                "host": mf.host_info(),
                "steps_completed": self.step,
                "max_steps": self.cfg.max_steps,
                "wall_time_s": round(self._stopwatch.total(), 3),
                "train_time_s": round(self.train_seconds, 3),
                f"{self.unit_name}_total": self.units_total,
                f"{self.unit_name}_per_s": self.units_total / max(self.train_seconds, 1e-9),
                "final_metrics": self._final_metrics() if status == "completed" else m.get("final_metrics", {}),
            }
        )
        if status != "running":
            m["finished_at"] = mf.now_iso()
        if acc.is_main_process:
            mf.write_json_atomic(self.run_dir / mf.MANIFEST, m)
            if (status, m.get("registered")) != getattr(self, "_indexed", None):  # start, end, registration
                self._indexed = (status, m.get("registered"))
                record_run(self.run_dir, m)  # the runs index of `llmops ui` (never fails the run)

    def _record_contamination(self) -> None:
        """Overlap of the training data with the configured evaluation suites, in the manifest."""
        suites = self.recipe.data.contamination_suites
        if not suites or "contamination" in self.manifest:
            return
        if self.contamination_check is None:
            self.manifest["contamination"] = {"status": "not checked", "suites": suites,
                                              "reason": "no contamination_check passed to llmops.train.run"}
        elif self.accelerator.is_main_process:
            self.manifest["contamination"] = {"status": "checked", **self.contamination_check(self.recipe)}
            n = self.manifest["contamination"].get("contaminated_total", 0)
            if n:
                log.warning("%d evaluation items overlap the training data (manifest.json: contamination)", n)

    def _mark_failed(self, exc: BaseException) -> None:
        """Record a failure in the manifest when the run got far enough to have one."""
        if self.accelerator is None or not self.manifest.get("run_id"):
            return
        self.manifest["error"] = f"{type(exc).__name__}: {exc}"
        try:
            self._write_manifest(status=getattr(exc, "status", "failed") if isinstance(exc, StopRun) else "failed")
        except Exception:  # noqa: BLE001 - never mask the original error
            log.exception("could not write the failed manifest")

    def cleanup(self) -> None:
        if self.accelerator is not None:
            self.accelerator.end_training()


def run(loaded: LoadedRecipe, resume: bool = False, **hooks: Any) -> RunResult:
    """Train `loaded` into its ``output.dir``; see `Engine` (hooks: on_eval, contamination_check,
    generation_validator)."""
    return Engine(loaded, resume=resume, **hooks).run()
