"""Alert rule files (YAML, pydantic-validated) and the signals each rule kind measures.

Every signal is oriented so that *higher is worse*; a rule fires when its value reaches
`trigger` and re-arms only after it falls to `clear` (hysteresis). A value of None means
not enough data: the rule's state does not change.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogAction(_Strict):
    type: Literal["log"]


class WebhookAction(_Strict):
    type: Literal["webhook"]
    url: str = Field(description="POST target; body is JSON, signed with HMAC-SHA256.")
    secret_env: str = Field(description="Environment variable holding the HMAC secret (never the secret itself).")
    timeout_s: float = 5.0


class RetrainAction(_Strict):
    type: Literal["retrain"]
    recipe: str = Field(description="Recipe to launch with `llmops train RECIPE OVERRIDES...`.")
    overrides: list[str] = Field(default_factory=list, description="KEY=VALUE overrides passed to llmops train.")
    command: list[str] | None = Field(
        None, description="Launcher argv instead of `llmops train` ({recipe} is substituted), e.g. a scheduler submit.")


Action = Annotated[LogAction | WebhookAction | RetrainAction, Field(discriminator="type")]


class _Rule(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][\w.\-]{0,127}$")
    trigger: float = Field(description="Fire when the signal reaches this value.")
    clear: float | None = Field(None, description="Re-arm when the signal falls to this value (default: trigger).")
    cooldown: timedelta = Field(timedelta(hours=24), description="Minimum time between two firings.")
    actions: list[Action] = Field(default_factory=lambda: [LogAction(type="log")])

    @field_validator("cooldown", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta | None:
        return _as_duration(v)

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
    window: timedelta = Field(timedelta(days=1), description="Recent window whose mean rating is checked.")
    baseline_window: timedelta | None = Field(None, description="Window just before it (default: same length).")
    min_ratings: int = Field(20, ge=1, description="Fewer ratings in either window: no decision.")
    normalized: bool = Field(True, description="Compare ratings normalised to [0, 1] (else the raw scale).")

    @field_validator("window", "baseline_window", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> timedelta | None:
        return _as_duration(v)

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
    current: str = Field(description="File of current production prompts (text lines or JSONL).")
    statistic: Literal["drift", "psi"] = Field(
        "drift", description="`drift`: 1 when the report says drift, else 0; `psi`: the largest PSI of any feature.")
    trigger: float = 0.5
    clear: float | None = None

    def measure(self, db_url: str | None, now: datetime) -> tuple[float | None, str]:
        from llmops.monitor.drift import compare
        from llmops.monitor.features import read_prompts
        from llmops.monitor.references import resolve_reference

        report = compare(resolve_reference(self.reference, db_url), read_prompts(self.current))
        max_psi = max(f["psi"] for f in report["features"].values())
        value = float(report["drift"]) if self.statistic == "drift" else max_psi
        return value, f"drifted features {report['drifted_features'] or 'none'}, max PSI {max_psi:.3f}"


class ErrorRateRule(_Rule):
    kind: Literal["error_rate"]
    source: str = Field(description="JSONL request log: {ts: ISO-8601 or epoch, error: bool | status: int}.")
    window: timedelta = Field(timedelta(hours=1))
    min_requests: int = Field(20, ge=1)

    @field_validator("window", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> timedelta | None:
        return _as_duration(v)

    def measure(self, db_url: str | None, now: datetime) -> tuple[float | None, str]:
        total = errors = 0
        path = Path(self.source)
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise DataError(f"error-rate source {path}: {exc.strerror}") from None
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                ts = row["ts"]
                at = (datetime.fromtimestamp(float(ts), timezone.utc) if isinstance(ts, (int, float))
                      else datetime.fromisoformat(ts))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{path}:{i}: bad request record ({exc})") from None
            if at.tzinfo is None:
                at = at.replace(tzinfo=timezone.utc)
            if now - self.window <= at <= now:
                total += 1
                errors += bool(row.get("error")) or int(row.get("status", 200)) >= 500
        if total < self.min_requests:
            return None, f"only {total} requests in the window (need {self.min_requests})"
        return errors / total, f"{errors}/{total} requests failed"


Rule = Annotated[RatingDropRule | DriftRule | ErrorRateRule, Field(discriminator="kind")]


class RulesFile(_Strict):
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
    base = path.parent
    for rule in rules.rules:  # relative paths in a rules file are relative to the file
        for attr in ("current", "source"):
            if hasattr(rule, attr) and not Path(getattr(rule, attr)).is_absolute():
                setattr(rule, attr, str(base / getattr(rule, attr)))
        if isinstance(rule, DriftRule) and not rule.reference.startswith("registry:"):
            if not Path(rule.reference).is_absolute():
                rule.reference = str(base / rule.reference)
    return rules
