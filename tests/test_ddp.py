"""DDP on 2 CPU processes (gloo): one value per sample per row, equal to a single-process evaluation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import FileReference, assert_store_matches, digits_loaders, load_file_reference, trainer, val_tensors
from torch.utils.data import DataLoader

from lightning_ddd import DecisionRecorder, DecisionStore, WithIndex
from lightning_ddd.demo.models import DigitsClassifier


@pytest.mark.parametrize("strategy,ids", [("ddp_spawn", "sampler"), ("ddp_fork", "batch"), ("ddp_fork", "shuffled")])
def test_ddp_rows_equal_single_process_evaluation(tmp_path, strategy, ids):
    x, y = val_tensors()
    assert len(y) % 2 == 1  # DistributedSampler pads one duplicate
    train, val = digits_loaders(val_batch_size=64)
    if ids == "batch":
        val = DataLoader(WithIndex(val.dataset), batch_size=64)
    if ids == "shuffled":  # Lightning injects its DistributedSampler; the ids come from its own draws
        val = DataLoader(val.dataset, batch_size=64, shuffle=True)
    (tmp_path / "ref").mkdir()
    rec = DecisionRecorder(tmp_path, run_name="ddp")
    t = trainer(tmp_path, [rec, FileReference(tmp_path / "ref", x, y)], strategy=strategy, devices=2, max_epochs=2)
    t.fit(DigitsClassifier(), train, val)
    ref = load_file_reference(tmp_path / "ref")
    assert len(ref.rows) == 3
    assert_store_matches(tmp_path / "ddp.h5", ref)
    s = DecisionStore(tmp_path / "ddp.h5")
    assert s.metadata["world_size"] == 2
    assert not (tmp_path / "ddp.h5.lock").exists()
    # every rank's thumbnails, by id: the digits themselves (8 x 8, each stretched to its own range)
    assert s.thumbnail_mask("val").all()
    xs = x.numpy()[:, 0]
    lo, hi = xs.min(axis=(1, 2), keepdims=True), xs.max(axis=(1, 2), keepdims=True)
    ref_thumbs = np.round((xs - lo) / np.maximum(hi - lo, 1e-12) * 255)
    assert np.abs(s.thumbnails("val")[..., 0].astype(int) - ref_thumbs).max() <= 1


def test_plain_ddp_from_a_script(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    script = Path(__file__).with_name("ddp_script.py")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = load_file_reference(tmp_path / "ref")
    assert len(ref.rows) == 3
    assert_store_matches(tmp_path / "ddp.h5", ref)
