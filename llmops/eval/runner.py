"""`eval run`: evaluate one model on one suite, with provenance, timings and a cache.

Flow: validate the suite → resolve and hash the model → load the records and have the
suite's task type (`llmops.eval.task_types`) render the samples → either read the raw
outputs from the result cache or have the task type ask the backend through typed
requests (`llmops.eval.requests`) → score every metric with a bootstrap interval
(`llmops.eval.results`) → write ``results.json`` and ``samples.jsonl``.

Nothing here depends on the kind of task: a new task type needs no change in this file.
The cache key (`llmops.eval.fingerprints.output_cache_key`) holds what decides the raw
outputs; metrics are recomputed from them. A model behind an API (``--backend openai``)
is never cached. Under ``accelerate launch`` each rank runs a shard and rank 0 writes
(`llmops.eval.parallel`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from llmops.errors import UserError
from llmops.eval import cache
from llmops.eval.backends import load_backend
from llmops.eval.fingerprints import (  # noqa: F401 - re-exported: the runner's public names
    LIBRARIES, OUTPUT_LIBRARIES, TOKENIZER_FILES, library_versions, model_fingerprint, output_cache_key,
    requests_fingerprint, resolve_device, tokenizer_fingerprint,
)
from llmops.eval.parallel import current_world, device_for, finish, run_sharded
from llmops.eval.results import filtered_answers, metric_table, sample_rows, score_samples, write_outputs  # noqa: F401
from llmops.eval.suites import Suite, load_suite
from llmops.eval.task_types import generation_params, task_type  # noqa: F401
from llmops.eval.tasks import Sample, build_samples, load_suite_records
from llmops.models.refs import ResolvedModel, resolve

log = logging.getLogger(__name__)
RUN_OPTIONS = ("dtype", "device", "batch_size", "base_url", "api_key_env", "concurrency", "engine_options")
REMOTE_BACKENDS = ("openai",)


def window_needed(suite: Suite, samples: list[Sample], tokenizer: Any) -> int | None:
    """Tokens the longest request of this run needs (prompt + answer), so an engine that reserves
    memory per position (vLLM) is not sized for the model's full context. None: the model's
    window (perplexity, or no local tokenizer)."""
    return None if tokenizer is None else task_type(suite).window_needed(samples, tokenizer)


def _timings(backend, wall: float) -> dict[str, Any]:
    st = backend.stats
    lat = np.asarray(st.latencies) if st.latencies else None
    out: dict[str, Any] = {"wall_seconds": wall, **backend.peak_memory_mb()}
    if st.generated_tokens:
        out.update(
            generated_tokens=st.generated_tokens,
            generate_seconds=st.generate_seconds,
            generated_tokens_per_s=st.generated_tokens / st.generate_seconds if st.generate_seconds else None,
        )
    if lat is not None:
        out.update(latency_p50_s=float(np.percentile(lat, 50)), latency_p95_s=float(np.percentile(lat, 95)))
    if st.scored_tokens:
        out.update(
            scored_tokens=st.scored_tokens, score_seconds=st.score_seconds,
            scored_tokens_per_s=st.scored_tokens / st.score_seconds if st.score_seconds else None,
        )
    return out


def _records(suite: Suite, base_dir: Path, limit: int | None, exclude_contaminated: str | None):
    """(evaluated records, few-shot pool, dataset fingerprint, decontamination provenance).

    `--limit` keeps the first N samples of the full run: it cuts after the few-shot pool
    is fixed, so a limited run is a subset of the full one."""
    from llmops.data import dataset_fingerprint

    records = load_suite_records(suite, base_dir, suite.dataset.split, suite.dataset.limit)
    decontamination = None
    if exclude_contaminated:  # drop items whose n-grams occur in this training data
        from llmops.eval.contamination import exclude_contaminated as _exclude

        records, decontamination = _exclude(records, exclude_contaminated)
    fewshot = bool(suite.prompt and suite.prompt.fewshot)
    pool = records
    if fewshot and suite.dataset.fewshot_split:
        pool = load_suite_records(suite, base_dir, suite.dataset.fewshot_split)
    evaluated = records[:limit] if limit else records
    return evaluated, pool, dataset_fingerprint(evaluated + (pool if fewshot else [])), decontamination


def execute_samples(backend, suite: Suite, samples: list[Sample]) -> list[dict[str, Any]]:
    """Raw outputs per sample (what the cache stores), for callers that hold a backend (in-training eval)."""
    return task_type(suite).execute(backend, samples)


def run_suite(
    model_ref: str | ResolvedModel, suite_path: str | Path, out_dir: str | Path, backend: str = "hf", use_cache: bool = True,
    exclude_contaminated: str | None = None, **overrides: Any,
) -> dict[str, Any]:
    """Evaluate `model_ref` on the suite; write results.json and samples.jsonl into `out_dir`.

    `overrides`: dtype, device, batch_size (execution), base_url, api_key_env, concurrency
    (`backend="openai"`: `model_ref` is the served model's name), engine_options (vllm), and
    suite settings (max_new_tokens, temperature, top_p, stop, limit, fewshot, seed, max_length).
    `exclude_contaminated`: a training dataset; suite items that overlap it are not evaluated.
    """
    t_start = time.perf_counter()
    options = {k: overrides.pop(k) for k in RUN_OPTIONS if k in overrides and overrides[k] is not None}
    limit = overrides.pop("limit", None)
    suite, base_dir = load_suite(suite_path, overrides)
    kind = task_type(suite)
    dtype = options.get("dtype", "float32")
    remote = backend in REMOTE_BACKENDS
    if remote:  # a model behind an API: nothing local to resolve, hash or cache
        if not options.get("base_url"):
            raise UserError(f"--backend {backend} needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        model, model_path, mhash = None, options["base_url"], None
        use_cache = False
    else:
        model = resolve(model_ref)  # once: backends and the tokenizer reuse it
        model_path, mhash = model.path, model.sha256

    evaluated, pool, data_fp, decontamination = _records(suite, base_dir, limit, exclude_contaminated)
    tokenizer = None
    if kind.needs_tokenizer and not remote:
        from llmops.models.loading import load_tokenizer

        tokenizer = load_tokenizer(model)
    samples = build_samples(suite, evaluated, tokenizer, pool)
    batch_size = options.get("batch_size", suite.generation.batch_size)
    device = options["base_url"] if remote else resolve_device(options.get("device"))
    versions = library_versions()
    key, key_parts = (None, {}) if remote else output_cache_key(mhash, suite, samples, backend, dtype, device,
                                                               batch_size, versions)

    world = current_world()  # > 1 under `accelerate launch`: each rank runs a shard, rank 0 writes
    engine_options: dict[str, Any] = {}
    cached = cache.load(key) if use_cache else None
    if cached is not None and len(cached.get("raw", [])) == len(samples):
        raw, timings, effective, hit = cached["raw"], cached["timings"], cached.get("generation_effective"), True
        log.info("eval cache hit %s: not running the model (metrics recomputed)", key[:12])
        if not world.is_main:
            finish(world)
            return {}
    else:
        if backend == "vllm":  # the suite's engine options, the command line's on top; a window no larger than used
            engine_options = {"max_model_len": window_needed(suite, samples, tokenizer),
                              **suite.engine, **options.get("engine_options", {})}
        engine = load_backend(
            backend, model or str(model_ref), tokenizer=tokenizer, dtype=dtype, **engine_options,
            device=device_for(world, options.get("device")) or device,
            base_url=options.get("base_url"), api_key_env=options.get("api_key_env"),
            concurrency=options.get("concurrency", 8), batch_size=batch_size, max_length=suite.max_length,
            seed=suite.seed,
        )
        t0 = time.perf_counter()
        try:
            raw = run_sharded(world, samples, lambda part: kind.execute(engine, part))
            timings = _timings(engine, time.perf_counter() - t0)
            timings.update(device=str(getattr(engine, "device", backend)), world_size=world.size)
            effective = kind.effective_generation(engine)
        finally:
            engine.close()
        hit = False
        if raw is None:  # not rank 0: its outputs went to rank 0, which scores and writes
            finish(world)
            return {}
        if use_cache:
            cache.store(key, {"raw": raw, "timings": timings, "generation_effective": effective, "key_parts": key_parts})

    metrics, results = score_samples(suite, samples, raw)
    table = metric_table(suite, metrics, results, len(samples))
    results_doc = {
        "suite": suite.name,
        "task": suite.task,
        "model": model.ref if model else str(model_ref),
        "n_samples": len(samples),
        "metrics": table,
        "timings": {**timings, "cached": hit, "total_seconds": time.perf_counter() - t_start},
        "provenance": {
            "model_ref": model.ref if model else str(model_ref), "model_path": str(model_path), "model_hash": mhash,
            # the folder's own hash (= the registry's version hash); model_hash also covers an adapter's base
            "artifact_hash": model.own_sha256 if model else None,
            "suite_path": str(Path(suite_path)), "suite_hash": suite.hash, "suite": suite.model_dump(mode="json"),
            "dataset_fingerprint": data_fp, "requests_fingerprint": requests_fingerprint(samples),
            "tokenizer_hash": tokenizer_fingerprint(model) if model else None,
            "generation": suite.generation.model_dump(mode="json"), "generation_effective": effective,
            "stride": suite.stride, "seed": suite.seed, "limit": limit, "world_size": world.size, "engine": engine_options,
            "backend": backend, "dtype": dtype, "device": device, "batch_size": batch_size,
            "libraries": versions, "metric_signatures": {n: m["signature"] for n, m in table.items()},
            "cache_key": key, "cache_key_parts": key_parts, "cache_hit": hit, "decontamination": decontamination,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        },
    }
    write_outputs(out_dir, sample_rows(suite, samples, raw, metrics, results), results_doc)
    finish(world)
    return results_doc
