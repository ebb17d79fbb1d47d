"""A committed row is never lost or altered; an uncommitted row never reads as data; readers never block."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from lightning_ddd import DecisionStore
from lightning_ddd.store import Row, RowFlag, StoreWriter
from lightning_ddd.store.pending import pending_dir, save_side_file

N = 3000
CLASSES = 7


def expected_row(step: int) -> Row:
    rng = np.random.default_rng(step)
    evaluated = np.ones(N, bool)
    evaluated[rng.integers(0, N, 20)] = False
    targets = np.random.default_rng(0).integers(0, CLASSES, N)
    pred = rng.integers(0, CLASSES, N)
    pred[: N // 2] = targets[: N // 2]  # at least half correct: a fill-value row (all wrong) cannot pass
    return Row("val", step, float(step), RowFlag.NONE, CLASSES, evaluated, pred == targets, pred, targets,
               loss=rng.random(N).astype(np.float32), margin=rng.normal(size=N).astype(np.float32))


def write_loop(path: str, fd: int) -> None:
    w = StoreWriter(path, run_name="kill", run_id="k")
    w.open()
    step = (w.last_step("val") or 0) + 1 if os.path.exists(path) else 1
    while True:
        w.append(expected_row(step))
        os.write(fd, step.to_bytes(8, "little"))
        step += 1


def check_store(path, committed_steps: set[int]) -> int:
    if not os.path.exists(path):  # killed before the (atomic) creation completed
        assert not committed_steps
        return 0
    s = DecisionStore(path)
    if "val" not in s.splits:
        assert not committed_steps
        return 0
    steps = s.rows("val")["global_step"]
    assert committed_steps <= set(steps.tolist()), "a committed row was lost"
    assert (np.diff(steps) > 0).all()
    data = {f: s.read("val", f) for f in ("evaluated", "correct", "pred", "loss", "margin")}
    for r, step in enumerate(steps):
        want = expected_row(int(step))
        ev = want.evaluated
        np.testing.assert_array_equal(data["evaluated"][r], ev)
        np.testing.assert_array_equal(data["correct"][r][ev], want.correct[ev])
        np.testing.assert_array_equal(data["pred"][r][ev], want.pred[ev])
        np.testing.assert_array_equal(data["loss"][r][ev], want.loss[ev])
        np.testing.assert_array_equal(data["margin"][r][ev], want.margin[ev])
        assert not data["correct"][r][~ev].any() and (data["pred"][r][~ev] == -1).all()
    return len(steps)


@pytest.mark.skipif(sys.platform != "linux", reason="fork and SIGKILL")
def test_sigkill_during_writes_never_loses_or_corrupts_a_committed_row(tmp_path):
    path = str(tmp_path / "kill.h5")
    ctx = mp.get_context("fork")
    committed: set[int] = set()
    rnd = random.Random(1)
    kills = 0
    for _ in range(200):
        r, wfd = os.pipe()
        proc = ctx.Process(target=write_loop, args=(path, wfd))
        proc.start()
        os.close(wfd)
        data = os.read(r, 8)  # one more committed row first (however slow the machine), then a kill at a
        time.sleep(rnd.uniform(0.0, 0.06))  # random moment of the writes that follow: no timing assumption
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        kills += proc.exitcode == -signal.SIGKILL
        while chunk := os.read(r, 4096):
            data += chunk
        os.close(r)
        committed |= {int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data) - 7, 8)}
        check_store(path, committed)
    assert kills >= 190
    rows = check_store(path, committed)
    assert rows >= 200  # every round committed at least one row before its kill


def test_uncommitted_rows_are_invisible_and_dropped_by_the_next_writer(tmp_path):
    path = tmp_path / "s.h5"
    w = StoreWriter(path, run_name="s", run_id="1")
    w.open()
    w.append(expected_row(1))
    with h5py.File(path, "a") as f:  # simulate a crash after the data, before the marker
        g = f["splits/val"]
        for name, ds in g.items():
            if ds.maxshape and ds.maxshape[0] is None:
                ds.resize(2, axis=0)
        g["global_step"][1] = 2
    assert DecisionStore(path).info("val").num_rows == 1
    w2 = StoreWriter(path, run_name="s", run_id="1")
    assert w2.open() == {"val": 1}
    w2.append(expected_row(2))
    check_store(path, {1, 2})


HOLDER = """
import sys, time, h5py
f = h5py.File(sys.argv[1], "r")
print("open", flush=True)
sys.stdin.readline()
"""


def test_a_plain_reader_holding_the_file_never_blocks_a_write(tmp_path):
    """Writes go to a copy that replaces the store: a reader holding the file open (with HDF5's lock) keeps
    its snapshot, and every row lands in the store at once."""
    path = tmp_path / "s.h5"
    w = StoreWriter(path, run_name="s", run_id="1")
    w.open()
    w.append(expected_row(1))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER + "print(f['splits/val/committed'].shape[0], flush=True)",
                               str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "open"
    try:
        assert w.append(expected_row(2)) is True
        assert w.append(expected_row(3)) is True
        assert not pending_dir(path).exists()
        assert DecisionStore(path).info("val").num_rows == 3
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        assert holder.stdout.readline().strip() == "1"  # its own snapshot, still readable
        holder.wait()
    assert w.append(expected_row(4)) is True
    check_store(path, {1, 2, 3, 4})
    assert not list(tmp_path.glob(".s.h5.tmp-*"))


def test_pending_rows_are_replayed_when_the_writer_opens(tmp_path):
    path = tmp_path / "s.h5"
    w = StoreWriter(path, run_name="s", run_id="1")
    w.open()
    w.append(expected_row(1))
    save_side_file(path, expected_row(2), w.run_id)
    assert DecisionStore(path).info("val").num_rows == 1
    StoreWriter(path, run_name="s", run_id="1").open()
    check_store(path, {1, 2})


def test_decision_store_readers_never_block_the_writer(tmp_path):
    path = tmp_path / "s.h5"
    w = StoreWriter(path, run_name="s", run_id="1")
    w.open()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.replace('"r")', '"r", locking=False)'), str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "open"
    try:
        for step in range(1, 4):
            assert w.append(expected_row(step)) is True
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait()
    check_store(path, {1, 2, 3})


def test_interrupted_creations_leave_nothing_that_reads_as_data(tmp_path):
    path = tmp_path / "s.h5"
    (tmp_path / ".s.h5.tmp-999").write_bytes(b"half a file")  # a creation killed before its rename
    w = StoreWriter(path, run_name="s", run_id="1")
    w.open()
    assert not (tmp_path / ".s.h5.tmp-999").exists()
    with h5py.File(path, "a") as f:  # a split group whose creation was killed half-way
        g = f["splits"].create_group("val")
        g.create_dataset("ids", data=np.arange(N))
    assert DecisionStore(path).splits == []
    w.append(expected_row(1))
    check_store(path, {1})
