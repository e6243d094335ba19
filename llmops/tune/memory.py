"""Peak memory of one trial when several trials share a process.

The training metrics report the process's peak (``ru_maxrss`` on CPU), which only grows:
the third trial of a worker would inherit the first one's peak. Here the peak is reset at
the start of each trial — `torch.cuda.reset_peak_memory_stats()` on GPU, and on Linux the
kernel's RSS high-water mark (writing ``5`` to ``/proc/self/clear_refs``) — and read at the end.
"""

from __future__ import annotations

from pathlib import Path


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def reset_peak() -> str:
    """Reset the peak counter; returns what is measured (`cuda`, `rss`, or `rss-process` when not resettable)."""
    if _cuda():
        import torch

        torch.cuda.reset_peak_memory_stats()
        return "cuda"
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "rss"
    except OSError:
        return "rss-process"


def peak_mb(kind: str) -> float | None:
    """Peak since `reset_peak` in MiB (GPU allocated memory, or resident set size)."""
    if kind == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
