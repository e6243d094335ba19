"""Synthetic prompt streams with controlled length distributions (words from a Zipf vocabulary).

Used to measure the drift monitor's false-alarm and detection rates where the truth is
known (tests, ``benchmarks/drift_calibration.py``).
"""

from __future__ import annotations

import numpy as np

VOCAB = np.array([f"w{i}" for i in range(3000)])
_WEIGHTS = 1.0 / np.arange(1, len(VOCAB) + 1) ** 1.1
_WEIGHTS /= _WEIGHTS.sum()


def prompts(rng: np.random.Generator, n: int, mean_len: float = 40.0, std_len: float = 10.0) -> list[str]:
    lengths = np.clip(np.rint(rng.normal(mean_len, std_len, n)), 1, None).astype(int)
    words = rng.choice(VOCAB, size=int(lengths.sum()), p=_WEIGHTS)
    out, pos = [], 0
    for k in lengths:
        out.append(" ".join(words[pos : pos + k]))
        pos += k
    return out
