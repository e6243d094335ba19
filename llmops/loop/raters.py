"""SIMULATED users and raters that talk to a real server over HTTP.

Nothing here is a person. The simulated *users* send chat requests to the serving
endpoint (``POST /v1/chat/completions`` with ``n`` choices, sampled with a fixed seed);
the simulated *raters* judge the answers with a fixed, deterministic policy and post
their judgements to the feedback API on the same port with their own rater API keys:

- a **rating** 1-5 from buckets of ROUGE-L F1 between the response and the reference
  (the docstring's real first sentence); each rater has slightly shifted buckets, so
  raters disagree a little and inter-rater agreement is measurable;
- a **comparison** that prefers the response with the higher ROUGE-L (a tie when equal).

Every item they touch carries ``"simulated": true`` in the report, and the rater names
start with ``simulated-rater-``.
"""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass, field
from typing import Any

import httpx

RATER_PREFIX = "simulated-rater-"
# Upper ROUGE-L edges of ratings 1..4 (5 above the last), shifted per rater.
BASE_EDGES = (0.08, 0.16, 0.28, 0.45)
RATER_SHIFTS = (-0.02, 0.0, 0.02)


def rouge_l(prediction: str, reference: str) -> float:
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rougeL"]).score(reference, prediction)["rougeL"].fmeasure


def rating_for(score: float, shift: float) -> int:
    """1-5 from ROUGE-L buckets (a rater's `shift` moves every edge)."""
    return 1 + sum(score >= edge + shift for edge in BASE_EDGES)


@dataclass
class RaterKey:
    name: str
    token: str
    shift: float


def create_rater_keys(db_url: str, n_raters: int) -> list[RaterKey]:
    """One `rater` API key per simulated rater (created in the store; the secrets stay in memory)."""
    from llmops.feedback.auth import create_key
    from llmops.feedback.store import FeedbackStore

    store = FeedbackStore(db_url)
    keys = []
    with store.transaction() as session:
        for i in range(n_raters):
            made = create_key(session, "rater", f"{RATER_PREFIX}{i + 1}-{_suffix()}")
            keys.append(RaterKey(made.name, made.token, RATER_SHIFTS[i % len(RATER_SHIFTS)]))
    return keys


def create_client_key(db_url: str) -> str:
    """The `client` API key the simulated users generate with (the model server requires one)."""
    from llmops.feedback.auth import create_key
    from llmops.feedback.store import FeedbackStore

    with FeedbackStore(db_url).transaction() as session:
        return create_key(session, "client", f"simulated-users-{_suffix()}").token


def _suffix() -> str:
    import secrets

    return secrets.token_hex(3)  # rater names are unique; a re-run gets fresh identities


@dataclass
class Served:
    """One served item: the prompt, its reference and the choices the server returned."""

    prompt: str
    reference: str
    item_id: int
    response_ids: list[int]
    texts: list[str]
    model_version: str
    rouge: list[float] = field(default_factory=list)


def send_traffic(base_url: str, records: list[dict[str, Any]], n: int, max_tokens: int, temperature: float,
                 seed: int, concurrency: int = 1, progress=None, client_token: str = "") -> list[Served]:
    """Simulated users: one chat request per record (the docstring as the user turn).

    Sequential by default: feedback item ids follow arrival order and the export is ordered
    by item, so concurrent users would make the preference file (and DPO) vary run to run.
    """

    def one(i_rec: tuple[int, dict[str, Any]]) -> Served:
        i, rec = i_rec
        body = {"messages": [{"role": "user", "content": rec["prompt"]}], "n": n, "max_tokens": max_tokens,
                "temperature": temperature, "seed": seed + i, "user": "simulated-user"}
        resp = client.post("/v1/chat/completions", json=body)
        resp.raise_for_status()
        data = resp.json()
        if progress is not None:
            progress.update(1)
        return Served(rec["prompt"], rec["completion"], data["llmops"]["item_id"],
                      [c["response_id"] for c in data["choices"]], [c["message"]["content"] for c in data["choices"]],
                      data["llmops"]["model_version"])

    headers = {"Authorization": f"Bearer {client_token}"} if client_token else {}
    with httpx.Client(base_url=base_url, timeout=300, headers=headers) as client, \
            cf.ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, enumerate(records)))


def rate(base_url: str, served: list[Served], raters: list[RaterKey], compare: bool = True,
         progress=None) -> dict[str, Any]:
    """Simulated raters post ratings (bulk, per rater) and pairwise comparisons over HTTP."""
    for s in served:
        s.rouge = [rouge_l(t, s.reference) for t in s.texts]
    counts = {"ratings": 0, "comparisons": 0, "ties": 0}
    scores: list[int] = []
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for rater in raters:
            headers = {"Authorization": f"Bearer {rater.token}"}
            ratings = [{"response_id": rid, "score": rating_for(r, rater.shift),
                        "critique": f"simulated: ROUGE-L {r:.3f} vs the reference"}
                       for s in served for rid, r in zip(s.response_ids, s.rouge)]
            for start in range(0, len(ratings), 500):
                resp = client.post("/v1/ratings/bulk", json={"ratings": ratings[start:start + 500]}, headers=headers)
                resp.raise_for_status()
                if resp.json()["n_failed"]:
                    raise RuntimeError(f"feedback API refused ratings: {resp.json()['results'][:3]}")
            counts["ratings"] += len(ratings)
            scores += [r["score"] for r in ratings]
            if compare:
                for s in served:
                    if len(s.response_ids) < 2:
                        continue
                    a, b = s.response_ids[:2]
                    ra, rb = s.rouge[:2]
                    body = ({"item_id": s.item_id, "tie": [a, b]} if ra == rb else
                            {"item_id": s.item_id, "chosen": a if ra > rb else b, "rejected": b if ra > rb else a})
                    counts["ties"] += ra == rb
                    resp = client.post("/v1/comparisons", json=body, headers=headers)
                    resp.raise_for_status()
                    counts["comparisons"] += 1
            if progress is not None:
                progress.update(1)
    counts["rating_histogram"] = {str(k): scores.count(k) for k in range(1, 6)}
    counts["raters"] = [r.name for r in raters]
    return counts
