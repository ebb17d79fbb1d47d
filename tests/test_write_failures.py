"""A write that fails (full disk, read-only directory) never kills training nor loses a committed row
(issue 17.2), on a real small filesystem (tmpfs, needs root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from helpers import ReferenceEval, assert_store_matches, digits_loaders, trainer, val_tensors

from lightning_ddd import DecisionRecorder, DecisionStore
from lightning_ddd.demo.models import DigitsClassifier
from lightning_ddd.store import Row, RowFlag, StoreWriter
from lightning_ddd.store.pending import pending_dir


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(folder: Path, leave: int) -> Path:
    filler = folder / "filler.bin"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


class DiskEvents(pl.Callback):
    """At the end of given training epochs: fill the disk, free it, or turn it read-only / writable."""

    def __init__(self, folder: Path, events: dict[int, str], recorder: DecisionRecorder) -> None:
        self.folder, self.events, self.recorder = folder, events, recorder

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        what = self.events.get(trainer.current_epoch)
        if what:
            self.recorder.flush()  # the epoch's row is written first: no race with the background writer
        if what == "fill":
            _fill(self.folder, 512 * 1024)
        elif what == "free":
            (self.folder / "filler.bin").unlink()
        elif what in ("ro", "rw"):
            subprocess.run(["mount", "-o", f"remount,{what}", str(self.folder)], check=True)


def _fit(mnt: Path, tmp_path: Path, events: dict[int, str], epochs: int = 5):
    torch.manual_seed(0)
    train, val = digits_loaders()
    x, y = val_tensors()
    ref = ReferenceEval(x, y)
    rec = DecisionRecorder(mnt / "ddd", run_name="run", pending_timeout=1.0)
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_epochs=1)
    t = trainer(tmp_path, [rec, DiskEvents(mnt, events, rec), ref, ckpt], max_epochs=epochs,
                enable_checkpointing=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(DigitsClassifier(lr=0.05), train, val)
    return rec, ref, [str(w.message) for w in caught], tmp_path / "ckpt" / "last.ckpt"


def test_full_disk_mid_run_never_stops_training_and_rows_catch_up(small_fs, tmp_path):
    rec, ref, msgs, _ = _fit(small_fs, tmp_path, {1: "fill", 3: "free"})
    assert any("MiB are free" in m for m in msgs), msgs  # one warning naming the free space
    assert sum("MiB are free" in m for m in msgs) == 1
    assert_store_matches(rec.store_path, ref)  # every row, in order, equal to the saved weights' evaluation
    assert not pending_dir(rec.store_path).exists()


def test_disk_full_to_the_end_parks_rows_that_repair_merges(small_fs, tmp_path):
    rec, ref, msgs, last = _fit(small_fs, tmp_path, {1: "fill"})
    s = DecisionStore(rec.store_path)
    kept = s.info("val").num_rows
    assert kept == 3  # epoch 0, 1 and 2 (the row at the end of epoch 1 is written before the filler)
    assert_store_matches(rec.store_path, ref, rows=list(range(kept)))
    pending = len(list(pending_dir(rec.store_path).glob("*.npz")))
    assert kept + pending == len(ref.rows) and s.pending_rows == pending
    assert any("lightning-ddd repair" in m for m in msgs), msgs
    state = torch.load(last, weights_only=False)["callbacks"]
    (key,) = [k for k in state if k.startswith("DecisionRecorder")]
    assert state[key]["rows"]["val"] == kept + pending  # the checkpoint counts durable rows only
    from lightning_ddd.cli import main

    assert main(["repair", str(rec.store_path)]) == 1  # still no room: says so, merges nothing
    (small_fs / "filler.bin").unlink()
    assert main(["repair", str(rec.store_path)]) == 0
    assert_store_matches(rec.store_path, ref)


def _resume(mnt: Path, tmp_path: Path, last: Path, epochs: int = 7):
    """A new process's view: a new recorder and Trainer continue from ``last``; returns the reference rows of
    the validations after the resumed sanity check (which the recorder does not record) and the warnings."""
    train, val = digits_loaders()
    x, y = val_tensors()
    ref = ReferenceEval(x, y)
    rec = DecisionRecorder(mnt / "ddd", run_name="run", pending_timeout=1.0)
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_epochs=1)
    t = trainer(tmp_path, [rec, ref, ckpt], max_epochs=epochs, enable_checkpointing=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(DigitsClassifier(lr=0.05), train, val, ckpt_path=str(last))
    return rec, ref.rows[1:], [str(w.message) for w in caught]


@pytest.mark.parametrize("leave", [512 * 1024, 0], ids=["side-files", "nothing-fits"])
def test_disk_full_then_resume_writes_every_row(small_fs, tmp_path, leave):
    """Rows parked in side files (or, when not even those fit, carried by the checkpoint) reach the store when
    a resume finds room, before any new row (issue 21.1, 21.2)."""
    torch.manual_seed(0)
    train, val = digits_loaders()
    x, y = val_tensors()
    ref = ReferenceEval(x, y)
    rec = DecisionRecorder(small_fs / "ddd", run_name="run", pending_timeout=0.2)

    class Fill(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                rec.flush()
                _fill(small_fs, leave)

    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_epochs=1)
    t = trainer(tmp_path, [rec, Fill(), ref, ckpt], max_epochs=5, enable_checkpointing=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(DigitsClassifier(lr=0.05), train, val)
    first = " ".join(str(w.message) for w in caught)
    assert ("carried by the last checkpoint" if leave == 0 else "3 row(s) wait in") in first, first
    assert "lost when this process ends" not in first
    assert DecisionStore(rec.store_path).info("val").num_rows == 3  # rows of epochs 3..5 wait elsewhere
    (small_fs / "filler.bin").unlink()
    rec2, rows2, msgs = _resume(small_fs, tmp_path, tmp_path / "ckpt" / "last.ckpt")
    ref.rows += rows2
    assert_store_matches(rec2.store_path, ref)  # 6 + 2 rows, each equal to its saved weights' evaluation
    np.testing.assert_array_equal(DecisionStore(rec2.store_path).rows("val")["epoch"], np.arange(8))
    assert not pending_dir(rec2.store_path).exists()
    said = [m for m in msgs if "parked in" in m or "carried by it" in m]
    assert len(said) == 1, msgs  # says so in one line


def test_a_second_fit_of_the_same_recorder_appends_parked_rows_first(small_fs, tmp_path):
    rec, ref, _, _ = _fit(small_fs, tmp_path, {1: "fill"})
    assert DecisionStore(rec.store_path).info("val").num_rows == 3
    (small_fs / "filler.bin").unlink()
    train, val = digits_loaders()
    x, y = val_tensors()
    ref2 = ReferenceEval(x, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, [rec, ref2], max_epochs=1).fit(DigitsClassifier(lr=0.05), train, val)
    assert any("appended 3 row(s) parked" in str(w.message) for w in caught)
    s = DecisionStore(rec.store_path)
    assert s.info("val").num_rows == 7 and not pending_dir(rec.store_path).exists()
    ref.rows += ref2.rows[1:]  # the new Trainer's sanity check is not a second before-training row
    assert_store_matches(rec.store_path, ref)


def test_read_only_then_resume_writes_every_row(small_fs, tmp_path):
    """A read-only folder leaves rows only in memory; the checkpoint (on another disk) carries them and the
    resume writes them (issue 21.2)."""
    rec, ref, msgs, last = _fit(small_fs, tmp_path, {1: "ro"}, epochs=5)
    assert any("carried by the last checkpoint" in m for m in msgs), msgs
    assert not any("lost when this process ends" in m for m in msgs), msgs
    subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    assert DecisionStore(rec.store_path).info("val").num_rows == 3
    rec2, rows2, _ = _resume(small_fs, tmp_path, last)
    ref.rows += rows2
    assert_store_matches(rec2.store_path, ref)
    np.testing.assert_array_equal(DecisionStore(rec2.store_path).rows("val")["epoch"], np.arange(8))


def test_read_only_directory_mid_run_never_stops_training(small_fs, tmp_path):
    rec, ref, msgs, _ = _fit(small_fs, tmp_path, {1: "ro"}, epochs=3)
    subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    s = DecisionStore(rec.store_path)
    assert s.info("val").num_rows == 3
    assert_store_matches(rec.store_path, ref, rows=[0, 1, 2])
    assert any("could not be saved on this disk" in m and "carried by the last checkpoint" in m for m in msgs)


def _row(step: int, n: int = 20000) -> Row:
    rng = np.random.default_rng(step)
    t = np.random.default_rng(0).integers(0, 10, n)
    c = rng.random(n) < 0.5
    return Row("val", step, float(step), RowFlag.NONE, 10, np.ones(n, bool), c, np.where(c, t, (t + 1) % 10), t,
               loss=rng.random(n).astype(np.float32), margin=rng.random(n).astype(np.float32))


WRITE_UNTIL_FULL = """
import sys, warnings
import numpy as np
sys.path.insert(0, sys.argv[2])
from test_write_failures import _row
from lightning_ddd.store import StoreWriter
warnings.simplefilter("ignore")
w = StoreWriter(sys.argv[1], run_name="r", run_id="r")
w.open()
for step in range(1, 400):
    w.append(_row(step))
print(sum(w.held_rows.values()), flush=True)
"""


@pytest.mark.parametrize("size", ["700k", "1m", "3m", "5m", "6500k"])
def test_writer_process_survives_a_disk_that_fills_up(tmp_path, size):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        path = mnt / "run.h5"
        proc = subprocess.run([sys.executable, "-c", WRITE_UNTIL_FULL, str(path), str(Path(__file__).parent)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]  # no SIGSEGV, no exception
        s = DecisionStore(path)
        rows = s.info("val").num_rows if "val" in s.splits else 0
        steps = s.rows("val")["global_step"] if rows else np.array([])
        np.testing.assert_array_equal(steps, np.arange(1, rows + 1))
        if rows:
            np.testing.assert_array_equal(s.read("val", "correct")[-1], _row(rows).correct)
        held = int(proc.stdout.strip())
        assert rows + len(StoreWriter(path, run_name="r", run_id="r").pending_files()) + held == 399
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
