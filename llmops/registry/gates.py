"""Promotion gates: rules a version must pass before an alias may point at it.

```yaml
aliases:
  production:
    rules:
      - {type: metric_threshold, suite: docstrings, metric: rougeL, min: 0.20}
      - {type: no_regression, suite: docstrings, metrics: [rougeL], margin: 0.01, alpha: 0.05}
      - {type: better, suite: docstrings, metrics: [rougeL, bleu], alpha: 0.05, require: any}
      - {type: required_tags, tags: {reviewed: "yes"}}
      - {type: requires_alias, alias: staging}
```
`no_regression` is a non-inferiority test with a declared margin and `better` a
superiority test with Holm's correction across metrics (`llmops.registry.stats`); both
compare the candidate with the version holding the alias (or `against`) over their
attached results of the same suite, through a comparison function the *caller* injects
(the CLI passes the evaluation harness's `bootstrap_compare`): the registry never imports
the harness. Who may force a promotion is a matter of API-key roles, not of this file.
Protected aliases take their gates from the alias policy stored in the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmops.config.loader import load_yaml_model
from llmops.errors import ConfigError
from llmops.registry.entities import LINEAGE_KEYS, EvalAttachment, ModelVersion
from llmops.registry.interface import RegistryStore
from llmops.registry.stats import TestResult, holm, noninferiority, superiority

# (baseline results dir, candidate results dir) -> {metric: {baseline, candidate, delta,
#  higher_is_better, deltas: [paired bootstrap replicates of delta], ...}}
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


class _Comparison(_Rule):
    suite: str = Field(description="Suite evaluated on both the candidate and the current holder.")
    metrics: list[str] | None = Field(None, description="Metrics to compare (default: all the comparison reports).")
    against: str | None = Field(None, description="Alias whose holder is the baseline (default: the target alias).")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="Significance level.")
    lower_is_better: list[str] = Field(
        default_factory=list, description="Metrics where smaller is better (besides those the harness marks so).")


class NoRegression(_Comparison):
    """Non-inferiority: every metric's change must be shown (at alpha) to exceed -margin."""

    type: Literal["no_regression"]
    margin: float = Field(..., ge=0, description="Largest worsening still acceptable (metric units); declared, "
                                                 "never implied: 0 demands evidence of no worsening at all.")


class Better(_Comparison):
    """Superiority: the change must exceed `min_delta`, significantly after Holm's correction."""

    type: Literal["better"]
    min_delta: float = Field(0.0, ge=0, description="Improvement that must be exceeded (metric units).")
    require_significance: bool = Field(True, description="False: the point estimate alone decides (not advised).")
    require: Literal["all", "any"] = Field("all", description="Which metrics must be better.")


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
    MetricThreshold | NoRegression | Better | RequiredTags | RequiredLineage | RequiresAlias,
    Field(discriminator="type"),
]


class AliasGates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(default_factory=list)


class GatesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    admins: Any = Field(None, description="Removed: forcing needs an API key with the admin role.")
    aliases: dict[str, AliasGates] = Field(default_factory=dict, description="Alias -> its gate rules.")

    @field_validator("admins")
    @classmethod
    def _no_admins(cls, value: Any) -> None:
        if value is not None:
            raise ValueError("`admins` is no longer read: who may force is the role of the API key (admin)")
        return None


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
    tests: list[dict[str, Any]] = field(default_factory=list)  # test, estimate, interval, p-value per metric


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


def _no_comparator(baseline: Path, candidate: Path) -> dict[str, dict[str, Any]]:
    raise ConfigError("no_regression/better gates need a comparison function: promote through the CLI, the "
                      "registry service or pass `compare=llmops.eval.api.bootstrap_compare`")


class GateEvaluator:
    """Checks one candidate against the rules of one alias."""

    def __init__(self, store: RegistryStore, config: GatesConfig, compare: Comparator | None = None) -> None:
        self.store = store
        self.config = config
        self.compare = compare or _no_comparator
        self._tests: list[dict[str, Any]] = []

    def evaluate(self, candidate: ModelVersion, alias: str, gates: AliasGates | None = None) -> GateReport:
        holder = self.store.alias_version(candidate.name, alias)
        report = GateReport(candidate.name, candidate.version, alias, holder)
        gates = gates if gates is not None else self.config.aliases.get(alias, AliasGates())
        evals = self.store.evals(candidate.name, candidate.version)
        for i, rule in enumerate(gates.rules):
            label = rule.name or f"{rule.type}#{i + 1}"
            self._tests = []
            passed, detail = getattr(self, f"_check_{rule.type}")(rule, candidate, alias, evals)
            report.results.append(RuleResult(label, rule.type, passed, detail, self._tests))
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

    def _comparison(self, rule: _Comparison, cand: ModelVersion, alias: str, evals):
        """(baseline version, {metric: row}) or (None, reason the rule is decided without a test)."""
        against = rule.against or alias
        base_version = self.store.alias_version(cand.name, against)
        if base_version is None:
            return None, (True, f"no current `{against}` version to compare with")
        if base_version == cand.version:
            return None, (True, f"candidate already holds `{against}`")
        cand_ev = _latest_eval(evals, rule.suite)
        base_ev = _latest_eval(self.store.evals(cand.name, base_version), rule.suite)
        if cand_ev is None or base_ev is None:
            missing = f"{cand.name}/{cand.version}" if cand_ev is None else f"{cand.name}/{base_version} ({against})"
            return None, (False, f"{missing} has no evaluation on suite `{rule.suite}` to compare")
        comparison = self.compare(self.store.eval_dir(base_ev), self.store.eval_dir(cand_ev))
        # Without a metric list, metrics the comparison refused (token-level scores of models
        # with different tokenizers) are left out; a named one that was refused fails the gate.
        metrics = rule.metrics or sorted(m for m, row in comparison.items() if "refused" not in row)
        refused = [m for m in metrics if "refused" in comparison.get(m, {})]
        if refused:
            return None, (False, "; ".join(f"{m}: not comparable ({comparison[m]['refused']})" for m in refused))
        absent = [m for m in metrics if m not in comparison or "deltas" not in comparison[m]]
        if absent or not metrics:
            return None, (False, f"the comparison has no bootstrap replicates for {absent or 'any metric'} "
                                 f"(has {sorted(comparison)})")
        return (base_version, against), {m: comparison[m] for m in metrics}

    @staticmethod
    def _higher_better(rule: _Comparison, metric: str, row: dict[str, Any]) -> bool:
        return not (metric in rule.lower_is_better or row.get("higher_is_better") is False)

    def _check_no_regression(self, rule: NoRegression, cand: ModelVersion, alias: str, evals) -> tuple[bool, str]:
        base, rows = self._comparison(rule, cand, alias, evals)
        if base is None:
            return rows
        (base_version, against) = base
        worse, results = [], []
        for metric, row in rows.items():
            res = noninferiority(metric, row["delta"], row["deltas"], rule.margin, rule.alpha,
                                 self._higher_better(rule, metric, row))
            results.append(res)
            if not res.passed:
                worse.append(f"{metric} {row['baseline']:.4g} -> {row['candidate']:.4g} (change {res.estimate:+.4g}, "
                             f"{res.confidence:.0%} CI [{res.interval[0]:+.4g}, {res.interval[1]:+.4g}], "
                             f"p={res.p_value:.3g} for change <= -{rule.margin:g}, alpha {rule.alpha:g})")
        self._tests = [r.to_dict() for r in results]
        if worse:
            return False, (f"not shown non-inferior (margin {rule.margin:g}) to {cand.name}/{base_version} "
                           f"({against}): " + "; ".join(worse))
        return True, (f"non-inferior to {cand.name}/{base_version} within margin {rule.margin:g} on "
                      + ", ".join(f"{r.metric} (p={r.p_value:.3g})" for r in results))

    def _check_better(self, rule: Better, cand: ModelVersion, alias: str, evals) -> tuple[bool, str]:
        base, rows = self._comparison(rule, cand, alias, evals)
        if base is None:
            return rows
        (base_version, against) = base
        raw = [superiority(m, row["delta"], row["deltas"], rule.min_delta, rule.alpha,
                           self._higher_better(rule, m, row)) for m, row in rows.items()]
        adjusted = holm([r.p_value for r in raw])
        results = []
        for r, p_adj in zip(raw, adjusted):
            ok = (p_adj < rule.alpha) if rule.require_significance else r.estimate > rule.min_delta
            results.append(TestResult(**{**r.__dict__, "p_adjusted": p_adj, "passed": ok}))
        self._tests = [r.to_dict() for r in results]
        passed = all(r.passed for r in results) if rule.require == "all" else any(r.passed for r in results)
        summary = "; ".join(f"{r.metric} change {r.estimate:+.4g} (CI [{r.interval[0]:+.4g}, {r.interval[1]:+.4g}], "
                            f"p={r.p_value:.3g}, Holm p={r.p_adjusted:.3g})" for r in results)
        verdict = "better" if passed else f"not shown better ({rule.require} of the metrics, alpha {rule.alpha:g})"
        return passed, f"{verdict} than {cand.name}/{base_version} ({against}) by > {rule.min_delta:g}: {summary}"

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
