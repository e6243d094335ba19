"""`python -m llmops.monitor.jobrunner EXIT_FILE -- ARGV...`: run ARGV, record its exit code atomically.

The exit file lets any process tell a finished job from one killed mid-run (see `llmops.monitor.jobs`).
SIGTERM (cancellation) is passed on to the child before the runner exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m llmops.monitor.jobrunner EXIT_FILE -- ARGV...", file=sys.stderr)
        return 2
    exit_file, command = argv[0], argv[2:]
    child = subprocess.Popen(command)

    def forward(signum, _frame):
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    code = child.wait()
    tmp = f"{exit_file}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(str(code))
    os.replace(tmp, exit_file)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
