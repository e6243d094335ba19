"""Prompt drift between a reference (training/eval prompts) and production prompts.

Features per prompt: ``token_length`` and ``oov_rate`` (numerical); over all tokens:
``token_distribution`` (categorical: the reference's top-K tokens plus "other").

A *reference profile* is fitted once and stored (JSON file, and optionally with a
registry version): PSI quantile bins with the reference's proportions, a capped sample
of reference values for KS/Wasserstein, the top-K token counts, and the vocabulary for
OOV. Comparisons only read it; nothing is refitted on current data.

OOV is measured against a vocabulary built from a fixed half of the reference; the
reference's own OOV distribution comes from the other half, so reference and
production OOV rates are measured the same way (a vocabulary scored on the data it was
built from would always give 0).

Method per feature (Evidently's rule; n = min(reference n, current n)):
- numerical, n <= 1000: two-sample KS test, drift if p < alpha / m;
- numerical, n > 1000: PSI over the stored bins, drift if PSI >= 0.25 (warn >= 0.1);
- categorical, n <= 1000: chi-square test, drift if p < alpha / m;
- categorical, n > 1000: Jensen-Shannon distance (base 2), drift if >= 0.1.
m is the number of features decided by a p-value (Bonferroni), so the chance of a false
alarm over the whole report stays <= alpha. Every statistic is reported regardless.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from llmops.errors import DataError
from llmops.monitor.features import Tokenize, make_tokenizer

PROFILE_FORMAT = "llmops-drift-profile/1"
OTHER = "<other>"
_EPS = 1e-4


@dataclass(frozen=True)
class DriftConfig:
    n_bins: int = 10
    top_k: int = 50
    sample_cap: int = 5000
    vocab_cap: int = 100_000
    small_n: int = 1000
    alpha: float = 0.05
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    js_threshold: float = 0.1
    seed: int = 0


# --- fitting --------------------------------------------------------------------------
def _quantile_edges(values: np.ndarray, n_bins: int) -> list[float]:
    """Inner bin edges at the reference quantiles (duplicates merged for discrete data)."""
    qs = np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1])
    return [float(x) for x in np.unique(qs)]


def _bin_props(values: np.ndarray, edges: list[float]) -> np.ndarray:
    # bin i holds edges[i-1] < x <= edges[i]
    idx = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    return counts / max(counts.sum(), 1.0)


def _numerical(values: np.ndarray, cfg: DriftConfig, rng: np.random.Generator) -> dict[str, Any]:
    edges = _quantile_edges(values, cfg.n_bins)
    sample = values if len(values) <= cfg.sample_cap else rng.choice(values, cfg.sample_cap, replace=False)
    return {
        "kind": "numerical",
        "n": int(len(values)),
        "bins": edges,
        "ref_props": _bin_props(values, edges).tolist(),
        "sample": sorted(float(v) for v in sample),
        "mean": float(values.mean()),
        "std": float(values.std()),
    }


def _oov(tokens: list[list[str]], vocab: set[str]) -> np.ndarray:
    return np.array([sum(t not in vocab for t in toks) / len(toks) if toks else 0.0 for toks in tokens])


def fit_profile(prompts: list[str], tokenize: Tokenize, tokenizer: dict[str, Any], cfg: DriftConfig = DriftConfig(),
                source: str | None = None) -> dict[str, Any]:
    """Fit the reference profile once; store it with `save_profile` / `store_reference`."""
    if len(prompts) < 4:
        raise DataError(f"a drift reference needs at least 4 prompts (got {len(prompts)})")
    rng = np.random.default_rng(cfg.seed)
    tokens = [tokenize(p) for p in prompts]
    order = rng.permutation(len(tokens))
    vocab_half, oov_half = order[: len(order) // 2], order[len(order) // 2 :]
    vocab_counts = Counter(t for i in vocab_half for t in tokens[i])
    vocab = sorted(t for t, _ in vocab_counts.most_common(cfg.vocab_cap))
    counts = Counter(t for toks in tokens for t in toks)
    top = [t for t, _ in counts.most_common(cfg.top_k)]
    total = sum(counts.values())
    ref_counts = [counts[t] for t in top] + [total - sum(counts[t] for t in top)]
    profile = {
        "format": PROFILE_FORMAT,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "source": source,
        "tokenizer": tokenizer,
        "config": asdict(cfg),
        "n_prompts": len(prompts),
        "vocab": vocab,
        "features": {
            "token_length": _numerical(np.array([len(t) for t in tokens], dtype=float), cfg, rng),
            "oov_rate": _numerical(_oov([tokens[i] for i in oov_half], set(vocab)), cfg, rng),
            "token_distribution": {"kind": "categorical", "n": int(total), "categories": top + [OTHER],
                                   "ref_counts": ref_counts},
        },
    }
    profile["sha256"] = profile_hash(profile)
    return profile


def profile_hash(profile: dict[str, Any]) -> str:
    body = {k: v for k, v in profile.items() if k not in ("sha256", "created_at")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def save_profile(profile: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profile))
    return path


def is_profile_file(path: str | Path) -> bool:
    path = Path(path)
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("format") == PROFILE_FORMAT
    except (ValueError, AttributeError):
        return False


def load_profile(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        profile = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read drift profile {path}: {exc}") from None
    if not isinstance(profile, dict) or profile.get("format") != PROFILE_FORMAT:
        raise DataError(f"{path}: not a drift profile (format {PROFILE_FORMAT})")
    if profile.get("sha256") and profile["sha256"] != profile_hash(profile):
        raise DataError(f"{path}: drift profile was modified after fitting (sha256 mismatch)")
    return profile


# --- comparing ------------------------------------------------------------------------
def psi(ref_props: np.ndarray, cur_props: np.ndarray) -> float:
    r = np.clip(np.asarray(ref_props, float), _EPS, None)
    c = np.clip(np.asarray(cur_props, float), _EPS, None)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_level(value: float, cfg: DriftConfig) -> str:
    return "alert" if value >= cfg.psi_alert else "warn" if value >= cfg.psi_warn else "ok"


def _compare_numerical(ref: dict[str, Any], cur: np.ndarray, cfg: DriftConfig) -> dict[str, Any]:
    from scipy import stats

    sample = np.asarray(ref["sample"], dtype=float)
    value = psi(np.asarray(ref["ref_props"]), _bin_props(cur, ref["bins"]))
    ks = stats.ks_2samp(sample, cur)
    scale = ref["std"] if ref["std"] > 0 else 1.0
    n = min(ref["n"], len(cur))
    return {
        "kind": "numerical", "n_reference": ref["n"], "n_current": int(len(cur)),
        "method": "ks" if n <= cfg.small_n else "psi",
        "psi": value, "psi_level": psi_level(value, cfg),
        "ks_statistic": float(ks.statistic), "ks_p_value": float(ks.pvalue),
        "wasserstein_norm": float(stats.wasserstein_distance(sample, cur) / scale),
        "reference_mean": ref["mean"], "current_mean": float(cur.mean()) if len(cur) else None,
    }


def _compare_categorical(ref: dict[str, Any], tokens: list[str], cfg: DriftConfig) -> dict[str, Any]:
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    cats = ref["categories"][:-1]
    index = {t: i for i, t in enumerate(cats)}
    cur = np.zeros(len(cats) + 1)
    for t in tokens:
        cur[index.get(t, len(cats))] += 1
    refc = np.asarray(ref["ref_counts"], dtype=float)
    rp, cp = refc / refc.sum(), cur / max(cur.sum(), 1.0)
    keep = (refc + cur) > 0
    try:
        chi2_p = float(stats.chi2_contingency(np.vstack([refc[keep], cur[keep]]))[1]) if cur.sum() else 1.0
    except ValueError:
        chi2_p = 1.0
    value = psi(rp, cp)
    n = min(ref["n"], int(cur.sum()))
    return {
        "kind": "categorical", "n_reference": ref["n"], "n_current": int(cur.sum()),
        "method": "chi2" if n <= cfg.small_n else "jensen_shannon",
        "psi": value, "psi_level": psi_level(value, cfg),
        "chi2_p_value": chi2_p, "js_distance": float(jensenshannon(rp, cp, base=2)) if cur.sum() else 0.0,
    }


def compare(profile: dict[str, Any], prompts: list[str], tokenize: Tokenize | None = None,
            cfg: DriftConfig | None = None) -> dict[str, Any]:
    """Drift report of `prompts` against a stored profile: {"drift": bool, "features": {...}}."""
    if not prompts:
        raise DataError("no current prompts to compare")
    cfg = cfg or DriftConfig(**{k: v for k, v in profile.get("config", {}).items() if k in DriftConfig.__annotations__})
    tokenize = tokenize or make_tokenizer(profile["tokenizer"])
    tokens = [tokenize(p) for p in prompts]
    vocab = set(profile["vocab"])
    feats = profile["features"]
    report = {
        "token_length": _compare_numerical(feats["token_length"], np.array([len(t) for t in tokens], float), cfg),
        "oov_rate": _compare_numerical(feats["oov_rate"], _oov(tokens, vocab), cfg),
        "token_distribution": _compare_categorical(feats["token_distribution"], [t for ts in tokens for t in ts], cfg),
    }
    n_tests = sum(f["method"] in ("ks", "chi2") for f in report.values())
    alpha = cfg.alpha / max(n_tests, 1)
    for f in report.values():
        if f["method"] == "ks":
            f.update(threshold=alpha, drift=f["ks_p_value"] < alpha)
        elif f["method"] == "chi2":
            f.update(threshold=alpha, drift=f["chi2_p_value"] < alpha)
        elif f["method"] == "psi":
            f.update(threshold=cfg.psi_alert, drift=f["psi"] >= cfg.psi_alert)
        else:
            f.update(threshold=cfg.js_threshold, drift=f["js_distance"] >= cfg.js_threshold)
    return {
        "drift": any(f["drift"] for f in report.values()),
        "warnings": sorted(k for k, f in report.items() if f["psi_level"] != "ok"),
        "drifted_features": sorted(k for k, f in report.items() if f["drift"]),
        "n_reference": profile["n_prompts"],
        "n_current": len(prompts),
        "profile_sha256": profile.get("sha256"),
        "features": report,
    }
