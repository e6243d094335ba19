"""The quickstart's simulated-rater stage alone: `llmops.loop.rater_queue.work` over HTTP on a fresh database.

N items of 4 responses in a project with overlap k = the number of raters (as the quickstart
sets it), the feedback API in-process on loopback (as `llmops serve` mounts it), the raters in
parallel threads. Prints the stage's seconds and the HTTP requests the server answered, so two
checkouts can be compared side by side on the same load:

    PYTHONPATH=. .venv/bin/python benchmarks/rater_stage.py [--items 200] [--raters 3]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--raters", type=int, default=3)
    args = ap.parse_args()

    import httpx

    from llmops.feedback.api.app import create_app
    from llmops.feedback.store import FeedbackStore
    from llmops.loop import rater_queue, raters
    from llmops.serve.server import ServerThread

    rng = random.Random(0)
    words = "the a sum of list file read open parse json mean value return compute sort write".split()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/stage.db"
        store = FeedbackStore(db)
        project = rater_queue.ensure_project(db, rater_queue.project_spec("stage", args.raters))["name"]
        served = []
        for i in range(args.items):
            ref = " ".join(rng.choice(words) for _ in range(8))
            texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 10))) for _ in range(4)]
            made = store.create_item(f"Summarise {i}: {ref}", [{"text": t, "model": "m"} for t in texts],
                                     project=project)
            served.append(raters.Served(f"Summarise {i}: {ref}", ref, made.item_id, made.response_ids, texts, "m/1"))
        keys = raters.create_rater_keys(db, args.raters)
        load = os.getloadavg()
        with ServerThread(create_app(db, migrate=False)) as srv:
            t0, cpu0 = time.perf_counter(), time.process_time()
            counts = rater_queue.work(srv.url, project, served, keys)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            metrics = httpx.get(srv.url + "/metrics").text
        requests = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                       if line.startswith("llmops_feedback_requests_total{") and "/v1/projects" in line)
        print(f"rater stage: {args.items} items x {args.raters} raters: {seconds:.1f} s wall, {cpu:.1f} s CPU "
              f"(server and raters, one process), {requests:.0f} queue requests, {counts['ratings']} ratings, "
              f"{counts['comparisons']} comparisons, {counts['corrections']} corrections; "
              f"load average {load[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
