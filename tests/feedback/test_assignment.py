"""Assignment with overlap k: k distinct raters per item, no repeats, skips stored, expiring claims,
and the k bound held by the database under racing claimers (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from llmops.feedback import assignment, projects
from llmops.feedback.project_store import ProjectStore
from llmops.feedback.tables import Assignment, utcnow

QUESTIONS = [{"type": "rating", "name": "quality"}]


def _store(db_url: str, k: int = 2, n_items: int = 3, timeout_s: int = 900) -> tuple[ProjectStore, list[int]]:
    ps = ProjectStore(db_url)
    ps.create_project({"name": "p", "overlap_k": k, "claim_timeout_s": timeout_s, "questions": QUESTIONS})
    ids = [ps.create_item(f"prompt {i}", [{"text": f"r{i}a"}, {"text": f"r{i}b"}], project="p").item_id
           for i in range(n_items)]
    return ps, ids


def _rate_all(ps: ProjectStore, item, rater: int, score: int = 3):
    return ps.answer("p", item.id, rater, {"ratings": [{"response_id": r.id, "score": score} for r in item.responses]})


def _slot_holders(db_url: str, item_id: int) -> int:
    from llmops.db import session_factory

    with session_factory(db_url)() as s:
        return s.scalar(select(func.count()).select_from(Assignment).where(
            Assignment.item_id == item_id, Assignment.slot.is_not(None)))


def test_each_item_goes_to_k_distinct_raters_and_leaves_the_queue(db_url):
    ps, ids = _store(db_url, k=2, n_items=3)
    raters = [ps.rater(f"r{i}") for i in range(4)]
    seen: dict[int, list[int]] = {i: [] for i in ids}
    for rater in raters:
        while (item := ps.next_item("p", rater)) is not None:
            assert rater not in seen[item.id]  # never an item this rater answered
            out = _rate_all(ps, item, rater)
            assert out.complete and out.missing == []
            seen[item.id].append(rater)
    assert all(len(v) == 2 and len(set(v)) == 2 for v in seen.values()), seen
    # r0 and r1 took every item; r2 and r3 found nothing left
    assert sorted(seen[ids[0]]) == raters[:2]
    prog = ps.progress("p")
    assert (prog.n_items, prog.n_complete, prog.n_answers, prog.n_claimed) == (3, 3, 6, 0)
    assert {r.rater: r.answered for r in prog.raters} == {"r0": 3, "r1": 3}


def test_the_same_claim_comes_back_until_answered_and_partial_answers_keep_it(db_url):
    ps, ids = _store(db_url, k=1, n_items=2)
    alice = ps.rater("alice")
    first = ps.next_item("p", alice)
    assert ps.next_item("p", alice).id == first.id  # asking again: same item, not a second claim
    part = ps.answer("p", first.id, alice, {"ratings": [{"response_id": first.responses[0].id, "score": 2}]})
    assert not part.complete and part.missing == ["quality"]
    assert ps.next_item("p", alice).id == first.id
    rest = ps.answer("p", first.id, alice, {"ratings": [{"response_id": first.responses[1].id, "score": 4}]})
    assert rest.complete
    assert ps.next_item("p", alice).id == ids[1]


def test_skips_are_stored_never_repeat_and_free_the_slot(db_url):
    ps, ids = _store(db_url, k=1, n_items=2)
    alice, bob = ps.rater("alice"), ps.rater("bob")
    got = ps.next_item("p", alice)
    assert got.id == ids[0]
    assert ps.next_item("p", bob).id == ids[1]  # k=1: ids[0] is taken by alice's claim
    ps.skip("p", got.id, alice)
    nxt = ps.next_item("p", alice)
    assert nxt is None  # ids[0] skipped, ids[1] claimed by bob (k=1): nothing for alice
    prog = ps.progress("p")
    assert prog.n_skips == 1 and {r.rater: (r.skipped, r.claimed) for r in prog.raters} == {
        "alice": (1, 0), "bob": (0, 1)}
    carol = ps.rater("carol")
    assert ps.next_item("p", carol).id == ids[0]  # the skip freed the slot


def test_answering_beyond_k_is_refused_whole(db_url):
    from llmops.feedback.errors import Conflict
    from llmops.feedback.tables import Rating

    ps, ids = _store(db_url, k=1, n_items=1)
    alice, bob = ps.rater("alice"), ps.rater("bob")
    item = ps.next_item("p", alice)
    _rate_all(ps, item, alice)
    with pytest.raises(Conflict, match="already has its 1 raters"):
        _rate_all(ps, item, bob)
    from llmops.db import session_factory

    with session_factory(db_url)() as s:
        assert s.scalar(select(func.count()).select_from(Rating)) == 2  # alice's two, none of bob's


def test_expired_claims_return_to_the_queue(db_url):
    ps, ids = _store(db_url, k=1, n_items=1, timeout_s=60)
    alice, bob = ps.rater("alice"), ps.rater("bob")
    assert ps.next_item("p", alice).id == ids[0]
    assert ps.next_item("p", bob) is None
    later = utcnow() + timedelta(seconds=61)
    with ps.transaction() as s:
        claim = assignment.claim_next(s, projects.get_project(s, "p"), bob, now=later)
    assert claim is not None and claim.item_id == ids[0]  # alice's abandoned claim was taken over
    assert _slot_holders(db_url, ids[0]) == 1
    with ps.transaction() as s:  # bob's claim expires too: a sweep returns it
        project = projects.get_project(s, "p")
        assert assignment.release_expired(s, project, now=later) == 0
        assert assignment.release_expired(s, project, now=later + timedelta(seconds=61)) == 1
    assert _slot_holders(db_url, ids[0]) == 0
    assert ps.next_item("p", bob).id == ids[0]
    # alice answering now takes a slot anew: none is free, so it is refused
    from llmops.feedback.errors import Conflict

    item = ps.get_item(ids[0])
    with pytest.raises(Conflict):
        _rate_all(ps, item, alice)


def test_the_database_refuses_a_slot_beyond_k_or_a_shared_slot(db_url):
    """The bound does not rest on Python: raw inserts that break it fail."""
    from sqlalchemy.exc import IntegrityError

    ps, ids = _store(db_url, k=2, n_items=1)
    a, b, c = (ps.rater(n) for n in "abc")
    with ps.transaction() as s:
        pid = projects.get_project(s, "p").id
    row = {"project_id": pid, "overlap_k": 2, "item_id": ids[0], "state": "done", "claimed_at": utcnow()}
    with ps.transaction() as s:
        s.execute(insert(Assignment), [{**row, "rater_id": a, "slot": 1}, {**row, "rater_id": b, "slot": 2}])
    for bad in ({**row, "rater_id": c, "slot": 3},  # beyond k
                {**row, "rater_id": c, "slot": 1},  # a taken slot
                {**row, "rater_id": c, "slot": 3, "overlap_k": 3},  # lying about k: the FK pins it
                {**row, "rater_id": a, "slot": None, "state": "skipped"}):  # a second row for (item, rater)
        with pytest.raises(IntegrityError):
            with ps.transaction() as s:
                s.execute(insert(Assignment), [bad])
    # lowering k below slots in use is refused too
    from llmops.feedback.errors import Conflict

    with pytest.raises(Conflict, match="overlap"):
        ps.update_project("p", {"overlap_k": 1})
    assert ps.get_project("p").overlap_k == 2
    ps.update_project("p", {"overlap_k": 3})  # raising it cascades to the assignments
    with ps.transaction() as s:
        s.execute(insert(Assignment), [{**row, "overlap_k": 3, "rater_id": c, "slot": 3}])


@pytest.mark.parametrize("locking", [True, False], ids=["locked", "constraint-only"])
def test_raters_racing_for_the_last_slots_never_exceed_k(db_url, locking):
    """12 threads (own connections) claim at once for 1 item with k=3: exactly 3 win.

    ``constraint-only`` skips the row lock (PostgreSQL) so only the unique (item, slot)
    constraint stands between the racers and a 4th rater.
    """
    from llmops.db import session_factory

    k, n = 3, 12
    ps, ids = _store(db_url, k=k, n_items=1)
    raters = [ps.rater(f"racer{i}") for i in range(n)]
    sessions = session_factory(db_url)
    barrier = threading.Barrier(n)
    won: list[int] = []
    errors: list[BaseException] = []

    # SQLite takes its write lock at BEGIN (IMMEDIATE): racers line up there. PostgreSQL runs them
    # side by side: they meet inside their transactions, just before claiming.
    sqlite = db_url.startswith("sqlite")

    def race(rater: int) -> None:
        try:
            if sqlite:
                barrier.wait(timeout=30)
            with sessions() as s, s.begin():
                project = projects.get_project(s, "p")
                if not sqlite:
                    barrier.wait(timeout=30)
                if locking:
                    claim = assignment.claim_next(s, project, rater)
                else:
                    claim = assignment._take_slot(s, project, ids[0], rater, utcnow(), lock=None)
            if claim is not None:
                won.append(rater)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    if locking or sqlite:
        assert len(won) == k, won  # every free slot is taken, none twice
    else:
        assert 1 <= len(won) <= k, won  # losers of a slot give up on this item: never more than k
    print(f"{db_url.split(':')[0]} locking={locking}: {len(won)} of {n} racers won a slot (k={k})")
    assert _slot_holders(db_url, ids[0]) == len(won)


def test_many_raters_draining_a_queue_concurrently_fill_every_item_exactly_k_times(db_url):
    from llmops.db import session_factory

    k, n_items, n_raters = 2, 6, 5
    ps, ids = _store(db_url, k=k, n_items=n_items)
    raters = [ps.rater(f"w{i}") for i in range(n_raters)]
    errors: list[BaseException] = []

    def work(rater: int) -> None:
        try:
            while (item := ps.next_item("p", rater)) is not None:
                _rate_all(ps, item, rater)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with session_factory(db_url)() as s:
        per_item = dict(s.execute(select(Assignment.item_id, func.count()).where(Assignment.state == "done")
                                  .group_by(Assignment.item_id)).all())
    assert per_item == {i: k for i in ids}
    assert ps.progress("p").n_complete == n_items
