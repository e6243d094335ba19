"""`llm_judge`: a judge model as a metric (rubric rating 1–10, or pairwise win rate vs a baseline).

    metrics:
      - {name: llm_judge, model: registry:judge@production, mode: rubric}
      - {name: llm_judge, model: gpt-judge, backend: openai, base_url: http://host/v1,
         api_key_env: JUDGE_KEY, mode: pairwise, baseline: runs/eval/v1}

The judge loads when the suite is scored, not when it is validated. `pairwise` compares
each output with the baseline run's output for the same prompt (its samples.jsonl; the
prompts must match). Unparseable verdicts are left out of the score and counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from llmops.errors import ConfigError, DataError
from llmops.eval.metrics.base import InputKind, Metric, MetricResult

_OPTIONS = {"model", "backend", "base_url", "api_key_env", "mode", "rubric", "baseline", "use_reference",
            "max_new_tokens", "dtype"}


class LLMJudge(Metric):
    name = "llm_judge"
    input_kind: ClassVar[InputKind] = "judged"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        unknown = set(options) - _OPTIONS
        if unknown:
            raise ConfigError(f"metric `llm_judge`: unknown option(s) {sorted(unknown)} (options: {sorted(_OPTIONS)})")
        if not options.get("model"):
            raise ConfigError("metric `llm_judge`: set `model` (a model reference, or the served name with backend: openai)")
        self.mode = options.get("mode", "rubric")
        if self.mode not in ("rubric", "pairwise"):
            raise ConfigError(f"metric `llm_judge`: mode must be rubric or pairwise, got {self.mode!r}")
        if self.mode == "pairwise" and not options.get("baseline"):
            raise ConfigError("metric `llm_judge`: mode pairwise needs `baseline` (a results directory of the same suite)")
        if options.get("backend", "hf") == "openai" and not options.get("base_url"):
            raise ConfigError("metric `llm_judge`: backend openai needs `base_url`")
        self.judge = None  # loaded on first use
        self.texts: list[Any] = []

    def outputs(self) -> tuple[str, ...]:
        return ("judge_rating",) if self.mode == "rubric" else ("judge_win_rate",)

    def reduce(self, output: str, sums: np.ndarray) -> float:
        return float(sums[0] / sums[1]) if sums[1] else float("nan")

    def config(self):
        from llmops.eval.judge import DEFAULT_RUBRIC, JudgeConfig

        o = self.options
        return JudgeConfig(model=str(o["model"]), backend=o.get("backend", "hf"), base_url=o.get("base_url"),
                           api_key_env=o.get("api_key_env"), rubric=o.get("rubric", DEFAULT_RUBRIC),
                           max_new_tokens=int(o.get("max_new_tokens", 256)), dtype=o.get("dtype", "float32"))

    def signature(self) -> str:
        from llmops.eval.judge import PROMPT_VERSION, prompt_hash

        c = self.config()
        return f"llm_judge|{self.mode}|judge:{c.model}|{c.backend}|prompt:{PROMPT_VERSION}:{prompt_hash(c.rubric)}"

    def compute(self, questions: list[str], predictions: list[str], references: list[list[str]]) -> dict[str, MetricResult]:
        from llmops.eval.judge import Judge

        if self.judge is None:
            self.judge = Judge(self.config())
        refs = [r[0] if r and self.options.get("use_reference", True) else None for r in references]
        if self.mode == "rubric":
            rated = self.judge.rate(questions, predictions, refs)
            values = [(float(r), 1.0) if r is not None else (0.0, 0.0) for r, _ in rated]
            self.texts = [t for _, t in rated]
        else:
            baselines = self._baseline(questions)
            compared = self.judge.compare(questions, predictions, baselines, refs)
            values = [(s, 1.0) if s is not None else (0.0, 0.0) for s, _, _ in compared]
            self.texts = [[a, b] for _, a, b in compared]
        stats = np.asarray(values, dtype=float).reshape(-1, 2)
        results = self.results({self.outputs()[0]: stats})
        for res in results.values():
            res.extra.update(parse_failures=int((stats[:, 1] == 0).sum()), judge=self.config().provenance())
        return results

    def _baseline(self, questions: list[str]) -> list[str]:
        path = Path(self.options["baseline"]) / "samples.jsonl"
        if not path.is_file():
            raise DataError(f"metric `llm_judge`: baseline {path} not found (run the suite on the baseline model first)")
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        by_index = {r["index"]: r for r in rows}
        if len(by_index) < len(questions):
            raise DataError(f"metric `llm_judge`: baseline {path} has {len(by_index)} samples, this run {len(questions)}")
        return [by_index[i]["output"] for i in range(len(questions))]
