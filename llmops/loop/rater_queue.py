"""SIMULATED raters working through a rating project's queue over HTTP, as people on the rater page do.

The quickstart puts served traffic into a project with overlap k (= the number of simulated
raters, so every item is still judged by every rater, exactly as before). Each rater asks the
project for its next items (``POST /v1/projects/{p}/next?count=N``: assignment decides) and answers
them in one request (``.../answers``, one result per item): a 1-5 rating per response and a comparison of the
first two responses with the fixed policy of `llmops.loop.raters` (same judgements, same
amount). The first rater also writes a **simulated correction** of the item's weakest response:
the reference text, labelled ``{"simulated": true, "source": "reference"}`` — the corrected-
response path that feeds the SFT export. Nothing here is a person.
"""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any

import httpx

from llmops.loop.raters import BASE_EDGES, RaterKey, Served, rating_for, rouge_l

GUIDELINES = f"""## SIMULATED raters (llmops quickstart)

Nothing in this project is rated by a person. Each simulated rater:

- **rates** every response 1-5 from ROUGE-L F1 buckets against the reference (the docstring's first
  sentence), edges {BASE_EDGES} shifted a little per rater;
- **compares** the first two responses and prefers the higher ROUGE-L (a tie when equal);
- the first rater also **corrects** the weakest response: the corrected text is the reference
  (labelled simulated).
"""
CORRECTION_META = {"simulated": True, "source": "reference"}
# Items claimed (``next?count=``) and answered (``/answers``) per request pair: two requests per
# CLAIM_BATCH items instead of two per item; judgements are the same item by item.
CLAIM_BATCH = 20


def project_spec(name: str, overlap_k: int) -> dict[str, Any]:
    """The quickstart's rating project: what the simulated raters answer (and a person could, on the page)."""
    return {
        "name": name, "guidelines": GUIDELINES, "overlap_k": overlap_k,
        "questions": [
            {"type": "rating", "name": "quality", "text": "How close is each summary to the docstring's first sentence?",
             "labels": {1: "unrelated", 3: "partly", 5: "same meaning"}},
            {"type": "preference", "name": "better", "text": "Which of the two summaries is better?"},
            {"type": "critique", "name": "notes", "target": "response", "required": False},
            {"type": "correction", "name": "rewrite", "text": "Write the summary it should have been.", "required": False},
        ],
    }


def ensure_project(db_url: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Create the project, or take the existing one (a resumed run) if its settings are the same."""
    from llmops.feedback.errors import NotFound
    from llmops.feedback.project_store import ProjectStore

    store = ProjectStore(db_url, migrate=False)
    try:
        have = store.get_project(spec["name"])
    except NotFound:
        return store.create_project(spec).model_dump()
    if have.overlap_k != spec["overlap_k"]:
        raise RuntimeError(f"project {spec['name']!r} exists with overlap {have.overlap_k}, not {spec['overlap_k']}")
    return have.model_dump()


def answer_for(s: Served, rater: RaterKey, correct: bool) -> dict[str, Any]:
    """One rater's whole answer to one served item (response ids in the order the server stored them)."""
    ratings = [{"response_id": rid, "score": rating_for(r, rater.shift),
                "critique": f"simulated: ROUGE-L {r:.3f} vs the reference"} for rid, r in zip(s.response_ids, s.rouge)]
    body: dict[str, Any] = {"ratings": ratings}
    if len(s.response_ids) >= 2:
        a, b = s.response_ids[:2]
        ra, rb = s.rouge[:2]
        body["comparison"] = ({"tie": [a, b]} if ra == rb else
                              {"chosen": a if ra > rb else b, "rejected": b if ra > rb else a})
    if correct:
        weakest = min(range(len(s.response_ids)), key=lambda i: (s.rouge[i], i))
        body["corrections"] = [{"response_id": s.response_ids[weakest], "text": s.reference,
                                "metadata": CORRECTION_META}]
    return body


def work(base_url: str, project: str, served: list[Served], raters: list[RaterKey], progress=None) -> dict[str, Any]:
    """Every simulated rater works the project's queue until it is empty for them (raters in parallel)."""
    for s in served:
        s.rouge = [rouge_l(t, s.reference) for t in s.texts]
    by_item = {s.item_id: s for s in served}
    path = f"/v1/projects/{project}"

    def one_rater(i: int) -> dict[str, Any]:
        rater = raters[i]
        got = {"items": 0, "skipped": 0, "ratings": 0, "comparisons": 0, "ties": 0, "corrections": 0, "scores": []}
        with httpx.Client(base_url=base_url, timeout=120, headers={"Authorization": f"Bearer {rater.token}"}) as c:
            while True:
                resp = c.post(f"{path}/next", params={"count": CLAIM_BATCH})
                resp.raise_for_status()
                items = resp.json()["items"]
                if not items:
                    break
                batch = []
                for item in items:
                    s = by_item.get(item["id"])
                    if s is None:  # left in the project by an earlier run on the same database: not ours to judge
                        c.post(f"{path}/items/{item['id']}/skip").raise_for_status()
                        got["skipped"] += 1
                        continue
                    batch.append((s, answer_for(s, rater, correct=i == 0)))
                if not batch:
                    continue
                out = c.post(f"{path}/answers", json={"answers": [{"item_id": s.item_id, **body} for s, body in batch]})
                out.raise_for_status()
                for (s, body), res in zip(batch, out.json()["results"]):
                    answer = res.get("answer") or {}
                    if res["status"] != 200 or answer.get("n_failed") or not answer.get("complete"):
                        raise RuntimeError(f"feedback API refused an answer to item {s.item_id}: {res}")
                    got["items"] += 1
                    got["ratings"] += len(body["ratings"])
                    got["scores"] += [r["score"] for r in body["ratings"]]
                    got["comparisons"] += "comparison" in body
                    got["ties"] += "tie" in body.get("comparison", {})
                    got["corrections"] += len(body.get("corrections", []))
        if progress is not None:
            progress.update(1)
        return got

    with cf.ThreadPoolExecutor(len(raters)) as pool:
        per_rater = list(pool.map(one_rater, range(len(raters))))
    scores = [x for r in per_rater for x in r["scores"]]
    counts = {k: sum(r[k] for r in per_rater) for k in ("ratings", "comparisons", "ties", "corrections")}
    return {**counts, "rating_histogram": {str(k): scores.count(k) for k in range(1, 6)},
            "raters": [r.name for r in raters], "items_per_rater": [r["items"] for r in per_rater],
            "skipped_foreign": sum(r["skipped"] for r in per_rater)}
