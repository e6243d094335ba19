"""Summarise an LLMOPS_TEST_CPU_LOG file (tests/conftest.py): tests and files by wall − CPU.

    python tests/cpu_report.py /tmp/cpu.jsonl [N]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str, top: int = 30) -> None:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    wall = sum(r["wall"] for r in rows)
    cpu = sum(r["cpu"] for r in rows)
    print(f"{len(rows)} tests: wall {wall:.0f} s, cpu {cpu:.0f} s, waiting {wall - cpu:.0f} s ({(wall - cpu) / max(wall, 1e-9):.0%})")
    files: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for r in rows:
        f = files[r["test"].split("::")[0]]
        f[0] += r["wall"]
        f[1] += r["cpu"]
        f[2] += 1
    print(f"\n{'wait':>7} {'wall':>7} {'cpu':>7}  file (tests)")
    for name, (w, c, n) in sorted(files.items(), key=lambda kv: kv[1][1] - kv[1][0])[:top]:
        print(f"{w - c:7.1f} {w:7.1f} {c:7.1f}  {name} ({n})")
    print(f"\n{'wait':>7} {'wall':>7} {'cpu':>7}  test")
    for r in sorted(rows, key=lambda r: r["cpu"] - r["wall"])[:top]:
        print(f"{r['wall'] - r['cpu']:7.1f} {r['wall']:7.1f} {r['cpu']:7.1f}  {r['test']}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30)
