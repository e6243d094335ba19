"""Data order, validation shards and checkpoint bookkeeping (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.errors import DataError, UserError
from llmops.train import checkpoints as ckpt
from llmops.train.accel import verify_world_size
from llmops.train.data_order import DataOrder, eval_shards


def test_ranks_see_disjoint_data_and_order_is_a_function_of_position():
    n, bs, world = 50, 3, 2
    orders = [DataOrder(n, bs, world, rank, seed=7) for rank in range(world)]
    per_epoch = orders[0].batches_per_epoch
    assert per_epoch == 50 // 6
    for epoch in range(3):
        seen = [set(o.indices(epoch * per_epoch, (epoch + 1) * per_epoch)) for o in orders]
        assert not seen[0] & seen[1]
        assert len(seen[0]) == len(seen[1]) == per_epoch * bs
    # a fresh object (a resumed process) yields the same batches at the same positions
    again = DataOrder(n, bs, world, 1, seed=7)
    assert [again.batch(p) for p in (0, 5, 17)] == [orders[1].batch(p) for p in (0, 5, 17)]
    assert orders[0].batch(0) != DataOrder(n, bs, world, 0, seed=8).batch(0)
    assert orders[0].permutation(0) != orders[0].permutation(1)  # reshuffled every epoch


def test_too_little_data_for_one_global_batch_is_a_clear_error():
    with pytest.raises(DataError, match="train.batch_size=4 x 2 processes"):
        DataOrder(7, 4, 2, 0, seed=0)


def test_eval_shards_give_every_rank_the_same_number_of_batches():
    shards = [eval_shards(9, 2, 3, rank) for rank in range(3)]
    assert {len(s) for s in shards} == {2}
    flat = sorted(i for s in shards for batch in s for i in batch)
    assert flat == list(range(9))
    assert shards[2][1] == []  # this rank runs a discarded forward to stay in lockstep


def _fake_checkpoint(root: Path, name: str, complete: bool = True) -> Path:
    path = root / "checkpoints" / name
    path.mkdir(parents=True)
    (path / "optimizer.bin").write_bytes(b"x")
    if complete:
        (path / ckpt.STATE_FILE).write_text(json.dumps({"step": 1}))
    return path


def test_half_written_checkpoints_are_never_picked_up(tmp_path):
    _fake_checkpoint(tmp_path, "step-2")
    _fake_checkpoint(tmp_path, "step-4")
    _fake_checkpoint(tmp_path, ".tmp-step-6", complete=False)
    _fake_checkpoint(tmp_path, "step-8", complete=False)  # no state file: not complete
    assert ckpt.latest_checkpoint(tmp_path).name == "step-4"
    removed = ckpt.remove_incomplete(tmp_path)
    assert [p.name for p in removed] == [".tmp-step-6"]
    _fake_checkpoint(tmp_path, "step-10")
    assert [p.name for p in ckpt.prune(tmp_path, keep_last=2)] == ["step-2"]
    assert [s for s, _ in ckpt.complete_checkpoints(tmp_path)] == [4, 10]


def test_world_size_mismatch_is_refused(monkeypatch):
    for var in ("WORLD_SIZE", "MASTER_ADDR", "ACCELERATE_USE_CPU"):
        monkeypatch.delenv(var, raising=False)
    verify_world_size(1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserError, match="train independently"):
        verify_world_size(1)
    verify_world_size(2)
    monkeypatch.delenv("WORLD_SIZE")
    # what `accelerate launch --cpu --num_processes 2` exports while starting one process
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with pytest.raises(UserError, match="--multi_gpu --num_processes N"):
        verify_world_size(1)
