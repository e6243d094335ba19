"""Serving throughput with and without micro-batching, side by side in one run.

For each setting, a real server (uvicorn in-process, `ServerThread`) with the built-in
model answers the same closed-loop load: `--clients` threads each send `--requests`
greedy completions (distinct prompts, `--max-tokens` tokens) back to back. Reported:
requests/s, generated tokens/s, p50/p99 latency, the mean sequences per backend call,
and the ratio of each setting's throughput to the unbatched one. Every answer is also
recorded in the feedback store (SQLite, one commit per request), as in production.

    .venv/bin/python benchmarks/serve_batching.py [--model builtin:tiny] [--clients 16] [--requests 8]

The clients share the CPU with the server: on a small machine the numbers are lower
bounds, and a busy machine inflates every latency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = ["Return", "Convert", "Create", "Raise", "The", "If", "Compute", "Open", "Read", "Write", "Parse", "Build"]


def run(model: str, batch: int, wait_ms: float, clients: int, requests: int, max_tokens: int, threads: int | None,
        db_dir: Path) -> dict:
    import httpx

    from llmops.serve.app import create_app
    from llmops.serve.server import ServerThread

    db = f"sqlite:///{db_dir / f'bench-{batch}.db'}"
    app = create_app(model, db_url=db, max_batch_size=batch, max_wait_ms=wait_ms, torch_threads=threads)
    latencies: list[float] = []
    tokens = 0
    with ServerThread(app) as srv:
        def client(k: int) -> tuple[list[float], int]:
            lat, tok = [], 0
            with httpx.Client(base_url=srv.url, timeout=600) as c:
                for i in range(requests):
                    prompt = f"{WORDS[(k + i) % len(WORDS)]} the {WORDS[(k * 7 + i) % len(WORDS)].lower()}"
                    t0 = time.perf_counter()
                    r = c.post("/v1/completions", json={"prompt": prompt, "max_tokens": max_tokens, "temperature": 0})
                    r.raise_for_status()
                    lat.append(time.perf_counter() - t0)
                    tok += r.json()["usage"]["completion_tokens"]
            return lat, tok

        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            for lat, tok in pool.map(client, range(clients)):
                latencies += lat
                tokens += tok
        wall = time.perf_counter() - t0
        stats = app.state.server.batcher.stats
    latencies.sort()
    return {
        "batch": batch, "wait_ms": wait_ms, "req_s": len(latencies) / wall, "tok_s": tokens / wall,
        "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "rows_per_call": stats["rows"] / max(stats["calls"], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="builtin:tiny")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=8, help="per client")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--settings", default="1:0,8:10,16:10", help="max_batch_size:max_wait_ms,...")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the worker")
    args = ap.parse_args()
    if args.model.startswith("builtin:"):
        from llmops.models.builtin import materialize

        materialize(args.model.split(":", 1)[1])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for setting in args.settings.split(","):
            batch, wait = setting.split(":")
            rows.append(run(args.model, int(batch), float(wait), args.clients, args.requests, args.max_tokens,
                            args.threads, Path(tmp)))
            print(f"done batch={batch}", file=sys.stderr, flush=True)
    base = rows[0]["req_s"]
    print(f"{args.clients} clients x {args.requests} requests, {args.max_tokens} greedy tokens, model {args.model}")
    print(f"{'batch':>5} {'wait_ms':>7} {'req/s':>7} {'tok/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'rows/call':>9} {'vs first':>8}")
    for r in rows:
        print(f"{r['batch']:>5} {r['wait_ms']:>7.0f} {r['req_s']:>7.1f} {r['tok_s']:>7.0f} {r['p50_ms']:>8.0f} "
              f"{r['p99_ms']:>8.0f} {r['rows_per_call']:>9.1f} {r['req_s'] / base:>7.2f}x")


if __name__ == "__main__":
    main()
