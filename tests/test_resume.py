"""Pre-emption and resume: rows up to the checkpoint stay identical, the stale row is dropped, the final store
equals an uninterrupted run's."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_ddd import DecisionStore

SCRIPT = str(Path(__file__).with_name("resume_script.py"))
FIELDS = ("evaluated", "correct", "pred", "loss", "margin")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=300)


def snapshot(path) -> dict[str, np.ndarray]:
    s = DecisionStore(path)
    out = {f: s.read("val", f) for f in FIELDS}
    rows = s.rows("val")
    out["global_step"], out["epoch"] = rows["global_step"], rows["epoch"]
    return out


def test_kill_then_resume_equals_uninterrupted(tmp_path):
    full = run(str(tmp_path), "full", "plain")
    assert full.returncode == 0, full.stderr[-3000:]
    k = 1  # checkpoint after epoch index 1 (2 epochs done); killed after the next row was written
    killed = run(str(tmp_path), "run", "kill", str(k + 1))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    before = snapshot(tmp_path / "run.h5")
    assert list(before["epoch"]) == [0, 1, 2, 3]  # row 3 was written after the last checkpoint (epoch 2)
    assert (tmp_path / "run.h5.lock").exists()  # a real kill leaves the claim behind
    ckpt = torch.load(tmp_path / "ckpt_run" / "last.ckpt", weights_only=False)
    assert ckpt["epoch"] == k and ckpt["global_step"] == before["global_step"][2]
    resumed = run(str(tmp_path), "run", "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "dropped 1 row(s)" in resumed.stderr
    after = snapshot(tmp_path / "run.h5")
    reference = snapshot(tmp_path / "full.h5")
    for f in FIELDS:
        np.testing.assert_array_equal(after[f][:3], before[f][:3], err_msg=f"rows 0..2 of {f} changed")
        np.testing.assert_array_equal(after[f], reference[f], err_msg=f"{f} differs from the uninterrupted run")
    np.testing.assert_array_equal(after["global_step"], reference["global_step"])
    np.testing.assert_array_equal(after["epoch"], [0, 1, 2, 3, 4])


def test_state_key_never_contains_the_path():
    from lightning_ddd import DecisionRecorder

    a = DecisionRecorder("/some/where/ddd", run_name="x")
    b = DecisionRecorder("/else/where/ddd", run_name="x")
    assert a.state_key == b.state_key and "where" not in a.state_key


def test_moved_store_directory_warns(tmp_path):
    from lightning_ddd import DecisionRecorder

    rec = DecisionRecorder(tmp_path / "new", run_name="x")
    rec.load_state_dict({"run_name": "x", "run_id": "abc", "store_path": str(tmp_path / "old" / "x.h5"),
                         "rows": {}, "last_step": {}})

    import lightning.pytorch as pl

    with pytest.warns(UserWarning, match="dirpath moved"):
        rec.on_fit_start(pl.Trainer(logger=False, accelerator="cpu"), torch.nn.Linear(1, 1))
    assert rec.store_path == tmp_path / "new" / "x.h5"
