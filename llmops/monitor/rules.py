"""Alert rule files (YAML, pydantic-validated) and the signals each rule kind measures.

Every signal is oriented so that *higher is worse*. A rule's alert goes ``pending`` when its
value reaches `trigger`, ``firing`` after `for_checks` consecutive such checks, and
``resolved`` when the value falls to `clear` (hysteresis); see `llmops.monitor.alerts`.
A value of None means not enough data: the alert's state does not change. Relative paths
in a rules file (sources, profiles, recipes) are relative to the file.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

from llmops.config.loader import load_yaml_model
from llmops.errors import DataError

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float) -> timedelta:
    if isinstance(text, (int, float)):
        return timedelta(seconds=float(text))
    m = _DURATION_RE.match(str(text).strip())
    if not m:
        raise ValueError(f"bad duration {text!r}: use e.g. 90s, 15m, 6h, 1d, 2w")
    return timedelta(seconds=float(m[1]) * _UNITS[m[2]])


def _as_duration(v: Any) -> timedelta | None:
    return v if v is None or isinstance(v, timedelta) else parse_duration(v)


Duration = Annotated[timedelta, BeforeValidator(_as_duration)]  # 90s, 15m, 6h, 1d, 2w or seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogAction(_Strict):
    type: Literal["log"]


NotifyEvent = Literal["fired", "renotified", "resolved"]


class WebhookAction(_Strict):
    type: Literal["webhook"]
    url: str = Field(description="POST target; body is JSON with an `event_id`, signed with HMAC-SHA256.")
    secret_env: str = Field(description="Environment variable holding the HMAC secret (never the secret itself).")
    timeout_s: float = 5.0
    retries: int = Field(3, ge=0, description="Retries after a connection error, 429 or 5xx (exponential backoff).")
    backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles each retry.")
    events: list[NotifyEvent] = Field(default_factory=lambda: ["fired", "renotified", "resolved"])


class RetrainAction(_Strict):
    type: Literal["retrain"]
    recipe: str = Field(description="Recipe run as a job: `llmops train RECIPE OVERRIDES...` (relative to the rules file).")
    overrides: list[str] = Field(default_factory=list, description="KEY=VALUE overrides passed to llmops train.")
    launcher: Literal["local", "accelerate", "template"] | None = Field(
        None, description="Default: template when `command` is given, else local. ""local: `llmops train` as its own process; accelerate: `accelerate launch` with "
        "num_processes; template: `command` (a scheduler submit that blocks until the job ends, e.g. `sbatch --wait`).")
    num_processes: int = Field(2, ge=1, description="Processes for the accelerate launcher.")
    command: list[str] | None = Field(
        None, description="Template argv ({recipe}, {overrides}, {job_id}, {run_dir} are substituted).")
    cancel_command: list[str] | None = Field(None, description="Template argv run on cancellation ({job_id}).")
    max_attempts: int = Field(3, ge=1)
    backoff: Duration = Field(timedelta(minutes=5), description="Delay before attempt 2; doubles per attempt.")


    @model_validator(mode="after")
    def _template(self):
        if self.launcher is None:
            self.launcher = "template" if self.command else "local"
        if self.launcher == "template" and not self.command:
            raise ValueError("launcher `template` needs `command`")
        return self


Action = Annotated[LogAction | WebhookAction | RetrainAction, Field(discriminator="type")]


class _Rule(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][\w.\-]{0,127}$")
    model: str = Field("", description="Model the alert is about (part of the alert's identity; default none).")
    trigger: float = Field(description="Breach when the signal reaches this value.")
    clear: float | None = Field(None, description="Resolve when the signal falls to this value (default: trigger).")
    for_checks: int = Field(1, ge=1, description="Consecutive breaching checks before the alert fires (pending until then).")
    renotify: Duration | None = Field(None, description="While firing, notify again this often (default: never).")
    cooldown: Duration = Field(timedelta(hours=24),
                                description="Minimum time between two retrainings of this alert, counted from when training started.")
    actions: list[Action] = Field(default_factory=lambda: [LogAction(type="log")])


    @model_validator(mode="after")
    def _hysteresis(self):
        if self.clear is None:
            self.clear = self.trigger
        if self.clear > self.trigger:
            raise ValueError("`clear` must be <= `trigger` (higher values are worse)")
        return self


class RatingDropRule(_Rule):
    kind: Literal["rating_drop"]
    model: str = Field(description="Model reference as recorded by the feedback store.")
    window: Duration = Field(timedelta(days=1), description="Recent window whose mean rating is checked.")
    baseline_window: Duration | None = Field(None, description="Window just before it (default: same length).")
    min_ratings: int = Field(20, ge=1, description="Fewer ratings in either window: no decision.")
    normalized: bool = Field(True, description="Compare ratings normalised to [0, 1] (else the raw scale).")


    def measure(self, db_url: str | None, now: datetime) -> tuple[float | None, str]:
        from llmops.monitor.quality import mean_rating

        base_len = self.baseline_window or self.window
        cur, n_cur = mean_rating(db_url, self.model, now - self.window, now, self.normalized)
        base, n_base = mean_rating(db_url, self.model, now - self.window - base_len, now - self.window, self.normalized)
        if n_cur < self.min_ratings or n_base < self.min_ratings or cur is None or base is None:
            return None, f"not enough ratings (current {n_cur}, baseline {n_base}, need {self.min_ratings})"
        return base - cur, f"mean rating {base:.3f} -> {cur:.3f} ({n_base} -> {n_cur} ratings)"


class DriftRule(_Rule):
    kind: Literal["drift"]
    reference: str = Field(description="Profile JSON file or registry:NAME/VERSION with a stored profile.")
    current: str = Field(description="Current production prompts (text lines, or JSONL such as the serving request log).")
    window: Duration | None = Field(
        None, description="Only prompts whose `ts` is within this window (JSONL records with `ts`); default: all.")
    statistic: Literal["drift", "psi"] = Field(
        "drift", description="`drift`: 1 when the calibrated report says drift, else 0; `psi`: the largest PSI.")
    trigger: float = 0.5
    clear: float | None = None
    for_checks: int = Field(2, ge=1, description="Consecutive drifted windows before the alert fires.")


    def measure(self, db_url: str | None, now: datetime) -> tuple[float | None, str]:
        from llmops.monitor.drift import compare
        from llmops.monitor.features import read_prompt_records
        from llmops.monitor.references import resolve_reference

        records = read_prompt_records(self.current)
        if self.window is not None:
            records = [(p, ts) for p, ts in records if ts is not None and now - self.window <= ts <= now]
        if not records:
            return None, "no prompts in the window"
        report = compare(resolve_reference(self.reference, db_url), [p for p, _ in records])
        if not report["decided"]:
            return None, report["why_undecided"]
        max_psi = max(f.get("psi", 0.0) for f in report["features"].values())
        value = float(report["drift"]) if self.statistic == "drift" else max_psi
        return value, (f"{len(records)} prompts: drifted features {report['drifted_features'] or 'none'}, "
                       f"max PSI {max_psi:.3f}")


class ErrorRateRule(_Rule):
    kind: Literal["error_rate"]
    source: str = Field(description="JSONL request log: {ts: ISO-8601 or epoch, error: bool | status: int}.")
    window: Duration = Field(timedelta(hours=1))
    min_requests: int = Field(20, ge=1)
    _malformed: int = PrivateAttr(0)  # lines skipped by the last check (exported as a metric)


    def measure(self, db_url: str | None, now: datetime) -> tuple[float | None, str]:
        """Share of failed requests in the window; malformed lines are counted and skipped, never fatal."""
        total = errors = malformed = 0
        path = Path(self.source)
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise DataError(f"error-rate source {path}: {exc.strerror}") from None
        for line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                ts = row["ts"]
                at = (datetime.fromtimestamp(float(ts), timezone.utc) if isinstance(ts, (int, float))
                      else datetime.fromisoformat(ts))
                failed = bool(row.get("error")) or int(row.get("status", 200)) >= 500
            except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
                malformed += 1
                continue
            if at.tzinfo is None:
                at = at.replace(tzinfo=timezone.utc)
            if now - self.window <= at <= now:
                total += 1
                errors += failed
        skipped = f"; {malformed} malformed line(s) skipped" if malformed else ""
        self._malformed = malformed
        if total < self.min_requests:
            return None, f"only {total} requests in the window (need {self.min_requests}){skipped}"
        return errors / total, f"{errors}/{total} requests failed{skipped}"


class OutputRule(_Rule):
    kind: Literal["output"]
    model_version: str = Field(description="Model version as the serving endpoint records it (e.g. docs/3).")
    statistic: Literal["refusal_rate", "empty_rate"] = Field("refusal_rate")
    window: Duration = Field(timedelta(hours=1), description="Responses created within this window.")
    min_responses: int = Field(50, ge=1, description="Fewer responses: no decision.")


    def measure(self, db_url: str | None, now: datetime) -> tuple[float | None, str]:
        from llmops.monitor.outputs import output_report

        row = next((r for r in output_report(db_url, now - self.window, now)
                    if r["model_version"] == self.model_version), None)
        n = row["n_responses"] if row else 0
        if n < self.min_responses:
            return None, f"only {n} responses of {self.model_version} in the window (need {self.min_responses})"
        return row[self.statistic], f"{self.statistic} {row[self.statistic]:.3f} over {n} responses"


Rule = Annotated[RatingDropRule | DriftRule | ErrorRateRule | OutputRule, Field(discriminator="kind")]


class RulesFile(_Strict):
    scope: str | None = Field(None, description="Identity of this rules file in the alert state (default: its "
                              "absolute path). Set it when watchers on several hosts share one rules file.")
    rules: list[Rule]

    @model_validator(mode="after")
    def _unique(self):
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate rule names: {', '.join(dupes)}")
        return self


def load_rules(path: str | Path) -> RulesFile:
    path = Path(path)
    rules = load_yaml_model(path, RulesFile, "alert rules")
    base = path.resolve().parent
    rules.scope = rules.scope or str(path.resolve())

    def rel(p: str) -> str:
        return p if Path(p).is_absolute() else str(base / p)

    for rule in rules.rules:  # relative paths in a rules file are relative to the file
        for attr in ("current", "source"):
            if hasattr(rule, attr):
                setattr(rule, attr, rel(getattr(rule, attr)))
        if isinstance(rule, DriftRule) and not rule.reference.startswith("registry:"):
            rule.reference = rel(rule.reference)
        if isinstance(rule, DriftRule) and not rule.model and rule.reference.startswith("registry:"):
            rule.model = rule.reference
        for action in rule.actions:
            if isinstance(action, RetrainAction):
                action.recipe = rel(action.recipe)
    return rules
