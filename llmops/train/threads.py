"""Intra-op thread count: from the CPUs this process may use, shared by its local peers.

torch starts one OpenMP thread per *core of the machine*, whatever the process's CPU
affinity (containers, ``taskset``) and however many training processes share those
cores. Two such processes on 2 cores took an SFT run from ~14k to 12–205 tokens/s here:
spinning OpenMP threads preempt each other. Each process therefore uses
``len(os.sched_getaffinity(0)) // local processes`` threads (at least 1).

Precedence: ``--threads N`` (exported as ``LLMOPS_THREADS`` so that launched ranks
inherit it) › ``OMP_NUM_THREADS`` set by the user (ignored under a launcher, which sets
it to 1 on its own) › the affinity rule. The number is recorded in the manifest and in
each checkpoint: bitwise resume needs the same count (reductions split by thread).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from llmops.errors import ConfigError

log = logging.getLogger(__name__)
ENV = "LLMOPS_THREADS"


@dataclass(frozen=True)
class ThreadPlan:
    threads: int
    source: str  # "--threads", "OMP_NUM_THREADS" or "affinity"
    cpus: int
    local_processes: int

    def as_dict(self) -> dict[str, int | str]:
        return asdict(self)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS/Windows: no affinity API
        return os.cpu_count() or 1


def local_processes(env: Mapping[str, str]) -> int:
    """Processes of this job on this machine (torchrun / accelerate set LOCAL_WORLD_SIZE)."""
    for var in ("LOCAL_WORLD_SIZE", "MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"):
        if env.get(var, "").isdigit() and int(env[var]) > 0:
            return int(env[var])
    return 1


def _positive(value: str, name: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"{name}={value!r}: the thread count must be a positive integer")
    return n


def plan_threads(override: int | None = None, env: Mapping[str, str] | None = None, cpus: int | None = None) -> ThreadPlan:
    """Decide the intra-op thread count (pure: environment and CPU count passed in)."""
    env = os.environ if env is None else env
    cpus = usable_cpus() if cpus is None else cpus
    local = local_processes(env)
    if override is not None:
        return ThreadPlan(_positive(str(override), "--threads"), "--threads", cpus, local)
    if env.get(ENV):
        return ThreadPlan(_positive(env[ENV], ENV), "--threads", cpus, local)
    launched = any(v in env for v in ("LOCAL_WORLD_SIZE", "LOCAL_RANK"))
    if env.get("OMP_NUM_THREADS") and not launched:
        return ThreadPlan(_positive(env["OMP_NUM_THREADS"], "OMP_NUM_THREADS"), "OMP_NUM_THREADS", cpus, local)
    return ThreadPlan(max(1, cpus // local), "affinity", cpus, local)


def configure_threads(override: int | None = None) -> ThreadPlan:
    """Apply `plan_threads` to torch in this process and return the plan."""
    import torch

    plan = plan_threads(override)
    if torch.get_num_threads() != plan.threads:
        torch.set_num_threads(plan.threads)
    log.debug("intra-op threads: %d (%s; %d usable CPUs, %d local processes)", plan.threads, plan.source,
              plan.cpus, plan.local_processes)
    return plan
