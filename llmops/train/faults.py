"""Named kill points for crash tests: ``LLMOPS_FAULT=POINT:N`` SIGKILLs the process the Nth time it passes POINT.

A resume is only trustworthy if it is exact wherever the process dies. Waiting for a
file to appear and then killing (the timing approach) only samples the moments a
test happens to hit; these points put the kill *inside* the windows that matter:

==========================  ========================================================
``step.backward``           mid optimizer step: after a micro-batch's backward, before
                            the optimizer step (partial gradients in memory)
``checkpoint.write``        mid checkpoint: weights/optimizer/RNG written to
                            ``.tmp-step-N``, not yet published
``checkpoint.published``    checkpoint renamed into place, old ones not yet rotated
``checkpoint.prune``        during rotation: an old checkpoint moved aside, not deleted
``eval.batch``              during validation, after its first batch
``final.write``             ``final/`` written to its temporary name, not yet renamed
==========================  ========================================================

Unset (the normal case) it costs one dictionary lookup per call.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "LLMOPS_FAULT"
POINTS = ("step.backward", "checkpoint.write", "checkpoint.published", "checkpoint.prune", "eval.batch", "final.write")
_passes: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """SIGKILL this process if ``LLMOPS_FAULT`` names `name` and this is its Nth pass."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _passes[name] += 1
    if _passes[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
