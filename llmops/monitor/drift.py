"""Prompt drift between a reference (training/eval prompts) and production prompts.

Features per prompt: ``token_length`` and ``oov_rate`` (numerical), the prompt's counts
over the reference's top-K tokens plus "other" (``token_distribution``), and optionally
``embedding``: the served model's mean-pooled hidden state (`llmops.monitor.embeddings`).

A *reference profile* is fitted once and stored (JSON file, and optionally with a
registry version): PSI quantile bins, the sample of reference values, the top-K token
counts, the OOV vocabulary and — the part that keeps the alarm honest — **null
thresholds calibrated at fit time** for a grid of window sizes (in prompts): a bootstrap
that redraws whole prompts for both a reference and a window of each size
(`llmops.monitor.calibration`). Comparisons only read the profile; nothing is refitted.

The test is chosen by the number of *prompts* n in the window:

- n <= ``small_n`` (1000): normalised 1-Wasserstein distance for numerical features;
- n >  ``small_n``: PSI over the stored bins for numerical features;
- always: Jensen-Shannon distance for the token distribution, mean standardised shift for
  embeddings.

Each feature drifts when its statistic exceeds its calibrated threshold at n (linear in
log n between calibrated sizes, which is conservative); the thresholds of one regime are
calibrated jointly, so the chance that *any* feature flags a same-distribution window is
about ``alpha`` (nominal; see `DriftConfig.alpha` for the measured rate). A window smaller than the smallest calibrated size gets no decision.
The reference is split in two fixed halves: the OOV vocabulary and the top-K token
categories are chosen on one, and the reference's OOV rates and token shares are
measured on the other, so reference and production are measured the same way (a
vocabulary scored on the data it was built from would always give 0, and top tokens
chosen on the data they are measured on look more frequent than they are).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from llmops.errors import DataError
from llmops.monitor import calibration as cal
from llmops.monitor.features import Tokenize, make_tokenizer

PROFILE_FORMAT = "llmops-drift-profile/2"
OTHER = "<other>"
DEFAULT_WINDOWS = (20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000)
Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class DriftConfig:
    n_bins: int = 10
    top_k: int = 50
    sample_cap: int = 5000
    vocab_cap: int = 100_000
    small_n: int = 1000
    # Nominal level of the bootstrap calibration. Measured (benchmarks/drift_calibration.py), the
    # false-alarm rate runs at 1.5-2x the nominal level: the bootstrap treats the finite reference
    # as the population, and a reference that happens to be atypical cannot know it. 2.5% keeps the
    # measured rate at or below 5%.
    alpha: float = 0.025
    psi_warn: float = 0.1
    psi_alert: float = 0.25  # PSI levels are reported for dashboards; decisions use calibrated thresholds
    replicates: int = 1000
    window_sizes: tuple[int, ...] = field(default=DEFAULT_WINDOWS)
    seed: int = 0

    def regimes(self, features: list[str]) -> dict[str, dict[str, str]]:
        small = {"token_length": "wasserstein", "oov_rate": "wasserstein", "token_distribution": "jensen_shannon",
                 "embedding": "mean_shift"}
        large = {**small, "token_length": "psi", "oov_rate": "psi"}
        return {"small": {k: small[k] for k in features}, "large": {k: large[k] for k in features}}


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


def _numerical(values: np.ndarray, cfg: DriftConfig) -> dict[str, Any]:
    edges = _quantile_edges(values, cfg.n_bins)
    return {
        "kind": "numerical",
        "n": int(len(values)),
        "bins": edges,
        "ref_props": _bin_props(values, edges).tolist(),
        "sample": sorted(float(v) for v in values),
        "mean": float(values.mean()),
        "std": float(values.std()),
    }


def _oov(tokens: list[list[str]], vocab: set[str]) -> np.ndarray:
    return np.array([sum(t not in vocab for t in toks) / len(toks) if toks else 0.0 for toks in tokens])


def _prop_rows(tokens: list[list[str]], categories: list[str]) -> np.ndarray:
    """Per prompt, the share of its tokens in each category (top-K tokens + other); 0 for an empty prompt."""
    index = {t: i for i, t in enumerate(categories)}
    other = len(categories)
    rows = np.zeros((len(tokens), other + 1))
    for r, toks in enumerate(tokens):
        for t in toks:
            rows[r, index.get(t, other)] += 1
        if toks:
            rows[r] /= len(toks)
    return rows


def _content_seed(prompts: list[str]) -> int:
    digest = hashlib.sha256()
    for p in prompts:
        digest.update(p.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return int.from_bytes(digest.digest()[:8], "little")


def fit_profile(prompts: list[str], tokenize: Tokenize, tokenizer: dict[str, Any], cfg: DriftConfig = DriftConfig(),
                source: str | None = None, embed: Embed | None = None,
                embedding: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit the reference profile (and its null thresholds) once; store it with `save_profile` / `store_reference`.

    `embed` (with its spec `embedding`, see `llmops.monitor.embeddings`) adds the embedding feature.
    """
    if len(prompts) < 4:
        raise DataError(f"a drift reference needs at least 4 prompts (got {len(prompts)})")
    if not cfg.window_sizes or min(cfg.window_sizes) < 2:
        raise DataError("drift window_sizes must be window sizes of at least 2 prompts")
    # The bootstrap is seeded from the reference's own content as well as cfg.seed: refitting the same
    # prompts gives the same profile, while different references get independent draws. With cfg.seed
    # alone every reference of a given size shared one set of resampled weights, so a whole fleet of
    # monitors (or the 100 references of benchmarks/drift_calibration.py) inherited that one draw's luck.
    rng = np.random.default_rng([cfg.seed, _content_seed(prompts)])
    if len(prompts) > cfg.sample_cap:  # the profile describes a random sample of sample_cap prompts
        prompts = [prompts[i] for i in np.sort(rng.choice(len(prompts), cfg.sample_cap, replace=False))]
    tokens = [tokenize(p) for p in prompts]
    order = rng.permutation(len(tokens))
    halves = order[: len(order) // 2], order[len(order) // 2:]
    vocabs = [sorted(t for t, _ in Counter(t for i in h for t in tokens[i]).most_common(cfg.vocab_cap)) for h in halves]
    oov_half = np.sort(halves[1])
    oov = _oov([tokens[i] for i in oov_half], set(vocabs[0]))  # scored against the vocabulary of the other half
    # Categories are chosen on the vocabulary half and measured on the other half: choosing the top
    # tokens on the data they are measured on would bias their reference shares upwards.
    counts = Counter(t for i in halves[0] for t in tokens[i])
    top = [t for t, _ in counts.most_common(cfg.top_k)]
    props = _prop_rows([tokens[i] for i in oov_half], top)
    lengths = np.array([len(t) for t in tokens], dtype=float)
    feats: dict[str, Any] = {
        "token_length": _numerical(lengths, cfg),
        "oov_rate": _numerical(oov, cfg),
        "token_distribution": {"kind": "categorical", "n": len(oov_half),
                               "n_tokens": int(sum(len(tokens[i]) for i in oov_half)),
                               "categories": top + [OTHER], "ref_props": props.mean(0).tolist()},
    }
    log_len = np.log1p(lengths)
    boot: dict[str, object] = {
        "token_length": cal.NumericFeature(log_len, list(np.log1p(feats["token_length"]["bins"])),
                                           float(log_len.std()) or 1.0),
        "oov_rate": cal.NumericFeature(oov, feats["oov_rate"]["bins"], feats["oov_rate"]["std"] or 1.0,
                                       subset=oov_half),
        "token_distribution": cal.CountFeature(props, subset=oov_half)}
    feats["token_length"]["log1p_std"] = float(log_len.std())
    if embed is not None:
        vectors = np.asarray(embed(prompts), dtype=float)
        sd = np.clip(vectors.std(0), 1e-6, None)
        feats["embedding"] = {"kind": "embedding", "n": len(prompts), "dims": int(vectors.shape[1]),
                              "spec": embedding or {}, "mean": vectors.mean(0).tolist(), "sd": sd.tolist()}
        boot["embedding"] = cal.VectorFeature(vectors, sd)
    regimes = cfg.regimes(list(feats))
    sizes = sorted(set(int(n) for n in cfg.window_sizes))
    w_ref = cal.prompt_weights(rng, len(prompts), len(prompts), cfg.replicates)  # shared by every window size
    calibration = [cal.calibrate(boot, regimes, len(prompts), n, cfg.alpha, cfg.replicates, rng, w_ref)
                   for n in sizes]
    profile = {
        "format": PROFILE_FORMAT,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "source": source,
        "tokenizer": tokenizer,
        "config": {**asdict(cfg), "window_sizes": sizes},
        "n_prompts": len(prompts),
        "vocab": vocabs[0],
        "features": feats,
        "calibration": {"method": "bootstrap over whole prompts (reference and window), joint min-p",
                        "alpha": cfg.alpha, "replicates": cfg.replicates, "small_n": cfg.small_n,
                        "regimes": regimes, "sizes": calibration},
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


def check_format(profile: Any, where: str) -> None:
    if isinstance(profile, dict) and profile.get("format") == "llmops-drift-profile/1":
        raise DataError(f"{where}: drift profile from an older llmops without calibrated thresholds; "
                        "fit it again with `llmops monitor profile`")
    if not isinstance(profile, dict) or profile.get("format") != PROFILE_FORMAT:
        raise DataError(f"{where}: not a drift profile (format {PROFILE_FORMAT})")


def load_profile(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        profile = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read drift profile {path}: {exc}") from None
    check_format(profile, str(path))
    if profile.get("sha256") and profile["sha256"] != profile_hash(profile):
        raise DataError(f"{path}: drift profile was modified after fitting (sha256 mismatch)")
    return profile


# --- comparing ------------------------------------------------------------------------
def psi(ref_props: np.ndarray, cur_props: np.ndarray) -> float:
    return float(cal.psi_rows(np.asarray(ref_props, float), np.asarray(cur_props, float)))


def psi_level(value: float, cfg: DriftConfig) -> str:
    return "alert" if value >= cfg.psi_alert else "warn" if value >= cfg.psi_warn else "ok"


def _statistic_numerical(ref: dict[str, Any], cur: np.ndarray, method: str) -> dict[str, Any]:
    """W1 on log1p(length) for lengths (heavy tails must not dominate), on the raw value otherwise."""
    from scipy import stats

    sample = np.asarray(ref["sample"], dtype=float)
    value = psi(np.asarray(ref["ref_props"]), _bin_props(cur, ref["bins"]))
    if "log1p_std" in ref:
        w1 = float(stats.wasserstein_distance(np.log1p(sample), np.log1p(cur)) / (ref["log1p_std"] or 1.0))
    else:
        w1 = float(stats.wasserstein_distance(sample, cur) / (ref["std"] or 1.0))
    return {"statistic": value if method == "psi" else w1, "psi": value, "wasserstein_norm": w1,
            "ks_statistic": float(stats.ks_2samp(sample, cur).statistic),
            "reference_mean": ref["mean"], "current_mean": float(cur.mean())}


def _statistic_categorical(ref: dict[str, Any], tokens: list[list[str]]) -> dict[str, Any]:
    cur = _prop_rows(tokens, ref["categories"][:-1]).mean(0)
    rp = np.asarray(ref["ref_props"], dtype=float)
    rp, cp = rp / rp.sum(), cur / max(cur.sum(), 1e-12)
    js = float(cal.js_rows(rp, cp))
    return {"statistic": js, "js_distance": js, "psi": psi(rp, cp), "n_current_tokens": int(sum(map(len, tokens)))}


def _statistic_embedding(ref: dict[str, Any], vectors: np.ndarray) -> dict[str, Any]:
    mean, sd = np.asarray(ref["mean"]), np.asarray(ref["sd"])
    value = cal.mean_shift(mean, sd, vectors)
    return {"statistic": value, "mean_shift": value}


def compare(profile: dict[str, Any], prompts: list[str], tokenize: Tokenize | None = None,
            cfg: DriftConfig | None = None, embed: Embed | None = None) -> dict[str, Any]:
    """Drift report of `prompts` against a stored profile: {"drift": bool, "decided": bool, "features": {...}}.

    `embed` is needed only when the profile has an embedding feature and no embedder can be
    rebuilt from its spec (tests); normally it is rebuilt from the profile.
    """
    if not prompts:
        raise DataError("no current prompts to compare")
    check_format(profile, "drift reference")
    known = {k: v for k, v in profile.get("config", {}).items() if k in DriftConfig.__annotations__}
    cfg = cfg or DriftConfig(**{**known, "window_sizes": tuple(known.get("window_sizes", DEFAULT_WINDOWS))})
    tokenize = tokenize or make_tokenizer(profile["tokenizer"])
    tokens = [tokenize(p) for p in prompts]
    feats = profile["features"]
    n = len(prompts)
    calib = profile["calibration"]
    regime = "small" if n <= calib["small_n"] else "large"
    methods = calib["regimes"][regime]
    report: dict[str, dict[str, Any]] = {
        "token_length": _statistic_numerical(feats["token_length"], np.array([len(t) for t in tokens], float),
                                             methods["token_length"]),
        "oov_rate": _statistic_numerical(feats["oov_rate"], _oov(tokens, set(profile["vocab"])), methods["oov_rate"]),
        "token_distribution": _statistic_categorical(feats["token_distribution"], tokens),
    }
    if "embedding" in feats:
        if embed is None:
            from llmops.monitor.embeddings import make_embedder

            embed = make_embedder(feats["embedding"]["spec"])
        report["embedding"] = _statistic_embedding(feats["embedding"], np.asarray(embed(prompts), dtype=float))
    for name, f in report.items():
        threshold = cal.threshold_at(calib["sizes"], regime, name, n)
        f.update(kind=feats[name]["kind"], method=methods[name], n_reference=feats[name]["n"], n_current=n,
                 threshold=threshold, decided=threshold is not None,
                 drift=bool(threshold is not None and f["statistic"] > threshold))
        f["psi_level"] = psi_level(f["psi"], cfg) if "psi" in f else "ok"
    decided = all(f["decided"] for f in report.values())
    smallest = min(int(c["n"]) for c in calib["sizes"])
    return {
        "drift": any(f["drift"] for f in report.values()),
        "decided": decided,
        "why_undecided": None if decided else f"{n} prompts: thresholds are calibrated for windows of >= {smallest}",
        "alpha": calib["alpha"],
        "warnings": sorted(k for k, f in report.items() if f["psi_level"] != "ok"),
        "drifted_features": sorted(k for k, f in report.items() if f["drift"]),
        "n_reference": profile["n_prompts"],
        "n_current": n,
        "profile_sha256": profile.get("sha256"),
        "features": report,
    }
