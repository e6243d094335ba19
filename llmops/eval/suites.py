"""Evaluation suites: a strict pydantic schema for the YAML files in ``eval/``.

A suite names its data, how a record becomes a prompt (a template or chat messages,
plus few-shot examples), the generation parameters and the metrics. Unknown keys are
errors with a did-you-mean suggestion and the file:line, exactly like recipes. The
suite hash covers everything that can change a model's outputs or the scores (not the
name or description), and is one part of the result-cache key.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmops.errors import ConfigError
from llmops.eval.filters import Aggregate, FilterSpec
from llmops.resources import shipped_fallback



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class DatasetSpec(_Strict):
    path: str = Field(
        description="Anything llmops.data.load_records accepts (.jsonl/.json/.csv/.parquet, a saved `datasets` "
        "directory, builtin:docstrings, builtin:arithmetic, hub:ID[:CONFIG] — the Hub only with "
        "LLMOPS_ALLOW_DOWNLOADS=1 or a local cache) or builtin:docstring-choice (multiple choice built from "
        "builtin:docstrings). Relative paths are relative to the suite file."
    )
    split: str | None = Field(None, description="Split of a builtin, hub or saved dataset (e.g. train/validation/test).")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Field mapping {name the suite uses: dataset column}, e.g. {question: problem, answer: solution}.",
    )
    limit: int | None = Field(None, gt=0, description="Use only the first N records.")
    fewshot_split: str | None = Field(
        None, description="Split the few-shot examples are drawn from (default: the evaluated records, never the sample itself)."
    )


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str = Field(description="Template: {field} is replaced by the record's field.")


class PromptSpec(_Strict):
    template: str | None = Field(None, description="Plain-text prompt template, e.g. 'Q: {question}\\nA:'.")
    messages: list[ChatMessage] | None = Field(
        None, description="Chat messages rendered with the tokenizer's chat template (generation prompt appended)."
    )
    fewshot: int = Field(0, ge=0, description="Number of solved examples placed before each prompt.")
    fewshot_separator: str = Field("\n\n", description="Between few-shot examples (template prompts).")
    target_template: str | None = Field(
        None, description="How a few-shot example's answer is written (default: its first reference / gold choice)."
    )

    @model_validator(mode="after")
    def _one_of(self) -> PromptSpec:
        if (self.template is None) == (self.messages is None):
            raise ValueError("prompt: set exactly one of `template` or `messages`")
        if self.messages is not None and self.messages[-1].role != "user":
            raise ValueError("prompt.messages: the last message must have role `user`")
        return self


class GenerationSpec(_Strict):
    max_new_tokens: int = Field(64, gt=0, description="Upper bound on generated tokens per sample.")
    temperature: float = Field(0.0, ge=0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass (with temperature > 0).")
    stop: list[str] = Field(default_factory=list, description="Cut the output at the first of these strings.")
    top_k: int = Field(0, ge=0, description="Sample only from the k most likely tokens (0: no cut; sampling only).")
    repetition_penalty: float = Field(1.0, gt=0, description="CTRL-style repetition penalty (1.0: none).")
    n: int = Field(1, ge=1, le=64, description="Samples per prompt (needs temperature > 0 when > 1); see `aggregate`.")
    batch_size: int | Literal["auto"] = Field(
        32, description="Requests per forward batch, or `auto` (on a GPU the largest that fits; 64 on CPU). "
        "Does not change greedy fp32 outputs; in bf16/fp16 it does, and it is part of the cache key there.",
    )

    @field_validator("batch_size")
    @classmethod
    def _positive(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("batch_size must be a positive integer or `auto`")
        return v

    @field_validator("stop")
    @classmethod
    def _nonempty(cls, v: list[str]) -> list[str]:
        if any(not s for s in v):
            raise ValueError("stop strings must be non-empty")
        return v


class MetricSpec(_Strict):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
    name: str

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class BootstrapSpec(_Strict):
    n_resamples: int = Field(1000, gt=0, description="Bootstrap resamples for the confidence intervals.")
    confidence: float = Field(0.95, gt=0, lt=1)


class Suite(_Strict):
    name: str = Field(description="Short identifier, used in reports.")
    description: str = ""
    task: str = Field("generate", description="A task type (`llmops.eval.task_types`): generate (text metrics), "
                      "multiple_choice (accuracy), perplexity.")
    dataset: DatasetSpec
    prompt: PromptSpec | None = Field(None, description="Required for generate and multiple_choice.")
    references: str | None = Field(None, description="generate: field holding the reference (string or list of strings).")
    choices: str | None = Field(None, description="multiple_choice: field holding the list of choices.")
    answer: str | None = Field(None, description="multiple_choice: field holding the gold index or the gold choice text.")
    choice_prefix: str = Field(" ", description="multiple_choice: put before each choice (template prompts).")
    text: str | None = Field(None, description="perplexity: field holding the text.")
    max_length: int | None = Field(None, gt=1, description="Context window in tokens (default: the model's).")
    stride: int | None = Field(
        None, gt=0, description="perplexity: tokens predicted per window after the first (default: lm-evaluation-harness's "
        "rolling windows, a full window each); smaller strides give every prediction more context.",
    )
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    engine: dict[str, Any] = Field(
        default_factory=dict,
        description="vllm backend: options for the engine, e.g. {tensor_parallel_size: 2, gpu_memory_utilization: 0.8, "
        "enforce_eager: false, max_model_len: 4096} (dtype comes from --dtype).",
    )
    filters: list[FilterSpec] = Field(
        default_factory=list,
        description="generate: answer extraction applied to every output before the metrics (regex, first_number, "
        "strip, lower, take_first), in order.",
    )
    aggregate: Aggregate = Field(
        "first", description="generate with generation.n > 1: `majority_vote` or the `first` sample is what text "
        "metrics score; pass_at_k sees every sample.",
    )
    metrics: list[MetricSpec] = Field(min_length=1)
    seed: int = Field(0, description="Seeds sampling, few-shot selection and the bootstrap.")
    bootstrap: BootstrapSpec = Field(default_factory=BootstrapSpec)

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        from llmops.eval.task_types import TASK_TYPES

        if v not in TASK_TYPES:
            close = difflib.get_close_matches(v, list(TASK_TYPES), n=1)
            raise ValueError(f"unknown task `{v}`" + (f" (did you mean `{close[0]}`?)" if close else
                                                      f" (one of {', '.join(TASK_TYPES)})"))
        return v

    @field_validator("metrics", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        return [{"name": m} if isinstance(m, str) else m for m in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _task_fields(self) -> Suite:
        from llmops.eval.metrics import build_metric
        from llmops.eval.task_types import TASK_TYPES

        kind = TASK_TYPES[self.task]
        kind.check_suite(self)

        for i, spec in enumerate(self.metrics):
            try:
                metric = build_metric(spec.name, **spec.options())
            except ConfigError as exc:
                raise ValueError(f"metrics.{i}: {exc}") from None
            if metric.input_kind not in kind.metric_inputs:
                raise ValueError(f"metrics.{i}: `{spec.name}` does not apply to task `{self.task}`")
            k = max(getattr(metric, "ks", [1]))
            if metric.input_kind == "samples" and k > self.generation.n:
                raise ValueError(f"metrics.{i}: pass@{k} needs generation.n >= {k} samples per prompt "
                                 f"(generation.n is {self.generation.n})")
        if self.generation.n > 1 and self.generation.temperature == 0:
            raise ValueError("generation.n > 1 with temperature 0 gives n identical greedy samples: "
                             "set generation.temperature > 0")
        if "dtype" in self.engine:
            raise ValueError("engine.dtype: set the dtype with --dtype (it is part of the result's provenance)")
        kind.check_settings(self)
        if self.prompt and self.prompt.template is not None:
            _check_template(self.prompt.template, "prompt.template")
        return self

    def build_metrics(self):
        from llmops.eval.metrics import build_metric

        return [build_metric(m.name, **m.options()) for m in self.metrics]

    def hash_payload(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data.pop("name"), data.pop("description")
        data["generation"].pop("batch_size")
        return data

    def outputs_payload(self) -> dict[str, Any]:
        """The settings that decide the model's raw outputs (not the metrics, the bootstrap
        or the batch size): one part of the result-cache key."""
        data = self.hash_payload()
        for key in ("metrics", "bootstrap", "prompt", "dataset", "references", "choices", "answer", "text",
                    "filters", "aggregate"):  # answers are filtered and scored from the cached outputs
            data.pop(key)  # the rendered requests are keyed instead
        return data

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.hash_payload(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _check_template(template: str, where: str) -> None:
    try:
        list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{where}: invalid template ({exc}); write literal braces as {{{{ and }}}}") from None


def template_fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


# ---------------------------------------------------------------- loading with clear errors


def _format(exc: ValidationError, source: str, lines: dict[tuple, int]) -> str:
    from llmops.config.loader import _describe

    messages = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            parent: Any = Suite
            for part in loc[:-1]:
                field = parent.model_fields.get(str(part)) if isinstance(parent, type) else None
                ann = getattr(field, "annotation", None)
                parent = next((a for a in (getattr(ann, "__args__", None) or (ann,))
                               if isinstance(a, type) and issubclass(a, BaseModel)), None)
            choices = list(parent.model_fields) if isinstance(parent, type) else []
            close = difflib.get_close_matches(str(loc[-1]), choices, n=1)
            reason = "unknown key" + (f" (did you mean `{close[0]}`?)" if close else f" (valid keys: {', '.join(choices)})")
        else:
            reason = _describe(err)
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
        where = f"{source}:{line}" if line else source
        messages.append(f"{where}: {dotted}: {reason}" if dotted else f"{where}: {reason}")
    return "\n".join(messages)


def load_suite(path: str | Path, overrides: dict[str, Any] | None = None) -> tuple[Suite, Path]:
    """Read and validate a suite YAML; `overrides` set generation keys, ``limit``, ``fewshot`` or ``seed``.

    Returns the suite and the file's directory (relative dataset paths resolve there).
    """
    from llmops.config.loader import _read_yaml

    path = shipped_fallback(path)  # `eval/NAME.yaml` outside a checkout: the shipped suite
    if not path.is_file():
        raise ConfigError(f"{path}: suite file not found")
    data, lines = _read_yaml(path)
    for key, value in (overrides or {}).items():
        if key in GenerationSpec.model_fields:
            data.setdefault("generation", {})[key] = value
        elif key == "limit":
            data.setdefault("dataset", {})["limit"] = value
        elif key == "fewshot":
            data.setdefault("prompt", {})["fewshot"] = value
        elif key in {"seed", "max_length", "stride"}:
            data[key] = value
        else:
            allowed = [*GenerationSpec.model_fields, "limit", "fewshot", "seed", "max_length", "stride"]
            close = difflib.get_close_matches(key, allowed, n=1)
            raise ConfigError(f"unknown suite override `{key}`" + (f" (did you mean `{close[0]}`?)" if close else f" (one of {', '.join(allowed)})"))
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format(exc, str(path), lines)) from None
    return suite, path.parent.resolve()
