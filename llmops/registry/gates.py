"""Promotion gates: YAML rules a version must pass before an alias may point at it.

```yaml
admins: [alice]                 # who may --force past failing gates
aliases:
  production:
    rules:
      - {type: metric_threshold, suite: docstrings, metric: rougeL, min: 0.20}
      - {type: no_regression, suite: docstrings, metrics: [rougeL], alpha: 0.05}
      - {type: required_tags, tags: {reviewed: "yes"}}
      - {type: requires_alias, alias: staging}
```
`no_regression` compares the candidate with the version that currently holds the alias
(or `against`) over their attached results of the same suite, with the paired test the
caller passes in (`compare`; the CLI and the loop pass the evaluation harness's
`llmops.eval.api.paired_compare`): the registry sits below the harness and never imports it.
Aliases without an entry have no gates.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmops.config.loader import load_yaml_model
from llmops.errors import ConfigError
from llmops.registry.entities import LINEAGE_KEYS, EvalAttachment, ModelVersion
from llmops.registry.store import RegistryStore

Comparator = Callable[[Path, Path], dict[str, dict[str, Any]]]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, description="Name shown when the rule refuses a promotion.")


class MetricThreshold(_Rule):
    type: Literal["metric_threshold"]
    suite: str = Field(description="Evaluation suite whose attached result is checked.")
    metric: str = Field(description="Metric name in results.json `metrics`.")
    min: float | None = Field(None, description="Lowest acceptable score (inclusive).")
    max: float | None = Field(None, description="Highest acceptable score (inclusive).")

    @model_validator(mode="after")
    def _bounds(self) -> MetricThreshold:
        if self.min is None and self.max is None:
            raise ValueError("set `min` or `max`")
        return self


class NoRegression(_Rule):
    type: Literal["no_regression"]
    suite: str = Field(description="Suite evaluated on both the candidate and the current holder.")
    metrics: list[str] | None = Field(None, description="Metrics to compare (default: all the paired test reports).")
    against: str | None = Field(None, description="Alias whose holder is the baseline (default: the target alias).")
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of the paired test.")
    tolerance: float = Field(0.0, ge=0, description="A worsening smaller than this never counts.")
    lower_is_better: list[str] = Field(
        default_factory=list, description="Metrics where smaller is better (besides those the harness marks so).")


class RequiredTags(_Rule):
    type: Literal["required_tags"]
    tags: dict[str, str | None] = Field(description="Tag -> required value (null: any value).")


class RequiredLineage(_Rule):
    type: Literal["required_lineage"]
    keys: list[str] = Field(description=f"Lineage keys that must be present, e.g. {', '.join(LINEAGE_KEYS[:3])}.")


class RequiresAlias(_Rule):
    type: Literal["requires_alias"]
    alias: str = Field(description="The candidate must currently hold this alias (e.g. staging before production).")


Rule = Annotated[
    MetricThreshold | NoRegression | RequiredTags | RequiredLineage | RequiresAlias, Field(discriminator="type")
]


class AliasGates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(default_factory=list)


class GatesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    admins: list[str] = Field(default_factory=list, description="Actors allowed to --force a promotion.")
    aliases: dict[str, AliasGates] = Field(default_factory=dict, description="Alias -> its gate rules.")

    def is_admin(self, actor: str) -> bool:
        env = {a.strip() for a in os.environ.get("LLMOPS_REGISTRY_ADMINS", "").split(",") if a.strip()}
        return actor in set(self.admins) | env


def load_gates(path: str | Path | None) -> GatesConfig:
    """Parse a gates file; errors name the file, line and key path."""
    if path is None:
        return GatesConfig()
    return load_yaml_model(path, GatesConfig, "gates")


@dataclass
class RuleResult:
    rule: str
    type: str
    passed: bool
    detail: str


@dataclass
class GateReport:
    name: str
    version: int
    alias: str
    baseline_version: int | None
    results: list[RuleResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[RuleResult]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d

    def refusal(self) -> str:
        parts = [f"rule `{r.rule}` ({r.type}): {r.detail}" for r in self.failures]
        return f"promotion of {self.name}/{self.version} to `{self.alias}` refused by " + "; ".join(parts)


def _latest_eval(evals: list[EvalAttachment], suite: str) -> EvalAttachment | None:
    matching = [e for e in evals if e.suite == suite or Path(e.suite).stem == suite]
    return matching[-1] if matching else None


class GateEvaluator:
    """Checks one candidate against the rules of one alias."""

    def __init__(self, store: RegistryStore, config: GatesConfig, compare: Comparator | None = None) -> None:
        self.store = store
        self.config = config
        self.compare = compare

    def evaluate(self, candidate: ModelVersion, alias: str) -> GateReport:
        holder = self.store.alias_version(candidate.name, alias)
        report = GateReport(candidate.name, candidate.version, alias, holder)
        gates = self.config.aliases.get(alias, AliasGates())
        evals = self.store.evals(candidate.name, candidate.version)
        for i, rule in enumerate(gates.rules):
            label = rule.name or f"{rule.type}#{i + 1}"
            passed, detail = getattr(self, f"_check_{rule.type}")(rule, candidate, alias, evals)
            report.results.append(RuleResult(label, rule.type, passed, detail))
        return report

    def _check_metric_threshold(self, rule: MetricThreshold, cand: ModelVersion, alias: str, evals) -> tuple[bool, str]:
        ev = _latest_eval(evals, rule.suite)
        if ev is None:
            return False, f"{cand.name}/{cand.version} has no evaluation on suite `{rule.suite}` attached"
        score = ev.scores().get(rule.metric)
        if score is None:
            return False, f"metric `{rule.metric}` missing from the `{rule.suite}` results (has {sorted(ev.scores())})"
        if rule.min is not None and score < rule.min:
            return False, f"{rule.metric} on {rule.suite} = {score:.4g} < min {rule.min:g}"
        if rule.max is not None and score > rule.max:
            return False, f"{rule.metric} on {rule.suite} = {score:.4g} > max {rule.max:g}"
        return True, f"{rule.metric} on {rule.suite} = {score:.4g}"

    def _check_no_regression(self, rule: NoRegression, cand: ModelVersion, alias: str, evals) -> tuple[bool, str]:
        against = rule.against or alias
        base_version = self.store.alias_version(cand.name, against)
        if base_version is None:
            return True, f"no current `{against}` version to compare with"
        if base_version == cand.version:
            return True, f"candidate already holds `{against}`"
        cand_ev = _latest_eval(evals, rule.suite)
        base_ev = _latest_eval(self.store.evals(cand.name, base_version), rule.suite)
        if cand_ev is None or base_ev is None:
            missing = f"{cand.name}/{cand.version}" if cand_ev is None else f"{cand.name}/{base_version} ({against})"
            return False, f"{missing} has no evaluation on suite `{rule.suite}` to compare"
        if self.compare is None:
            raise ConfigError(f"rule `{rule.name or rule.type}`: no_regression gates need a paired comparison "
                              "function (pass compare=llmops.eval.api.paired_compare)")
        comparison = self.compare(base_ev.results_path, cand_ev.results_path)
        # Without a metric list, metrics the comparison refused (token-level scores of models
        # with different tokenizers) are left out; a named one that was refused fails the gate.
        metrics = rule.metrics or sorted(m for m, row in comparison.items() if "refused" not in row)
        worse = []
        for metric in metrics:
            row = comparison.get(metric)
            if row is None:
                return False, f"paired test has no metric `{metric}` (has {sorted(comparison)})"
            if "refused" in row:
                return False, f"`{metric}` cannot be compared: {row['refused']}"
            delta = float(row["delta"])
            lower_better = metric in rule.lower_is_better or row.get("higher_is_better") is False
            change = -delta if lower_better else delta
            if change < -rule.tolerance and float(row["p_value"]) < rule.alpha:
                worse.append(
                    f"{metric} {row['baseline']:.4g} -> {row['candidate']:.4g} "
                    f"(delta {delta:+.4g}, p={float(row['p_value']):.3g} < {rule.alpha:g}, {row.get('test', 'paired')})"
                )
        if worse:
            return False, f"significant regression vs {cand.name}/{base_version} ({against}): " + "; ".join(worse)
        return True, f"no significant regression vs {cand.name}/{base_version} on {', '.join(metrics)}"

    def _check_required_tags(self, rule: RequiredTags, cand: ModelVersion, alias: str, evals) -> tuple[bool, str]:
        missing = [
            f"{k}={v}" if v is not None else k
            for k, v in rule.tags.items()
            if k not in cand.tags or (v is not None and cand.tags[k] != v)
        ]
        if missing:
            return False, f"missing tag(s) {', '.join(missing)}"
        return True, "tags present"

    def _check_required_lineage(self, rule: RequiredLineage, cand: ModelVersion, alias: str, evals) -> tuple[bool, str]:
        missing = [k for k in rule.keys if cand.lineage.get(k) in (None, "", [], {})]
        if missing:
            return False, f"lineage lacks {', '.join(missing)}"
        return True, "lineage complete"

    def _check_requires_alias(self, rule: RequiresAlias, cand: ModelVersion, alias: str, evals) -> tuple[bool, str]:
        if rule.alias in cand.aliases:
            return True, f"holds `{rule.alias}`"
        return False, f"{cand.name}/{cand.version} does not hold `{rule.alias}` (holds {list(cand.aliases) or 'none'})"
