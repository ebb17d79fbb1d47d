"""ImageNet-size costs of the real recording path (issue "Scale").

Drives the recorder's own capture, epoch buffer, gather and store writer with synthetic batches of an
ImageNet-train-size split (1,281,167 samples, 1,000 classes, batches of 256 in shuffled order) for 3
epochs, then writes the remaining rows up to 91 through the store writer, and analyses all 91 rows streamed
from the store. Prints per epoch: the per-batch capture time, the epoch-end gather + checks + write time,
bytes on disk (target: at most 12 MB per epoch with all fields, compressed) and peak host memory.

Usage: python benchmarks/imagenet_scale.py [--samples 1281167] [--epochs 3] [--rows 91]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import Trajectories  # noqa: E402

from lightning_ddd.analysis import stream_dynamics
from lightning_ddd.capture.buffer import DeviceBuffer  # noqa: E402
from lightning_ddd.capture.decisions import compute_decisions  # noqa: E402
from lightning_ddd.capture.gather import gather_epoch  # noqa: E402
from lightning_ddd.store import Row, RowFlag, StoreWriter  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stored_bytes(path: Path) -> int:
    """Compressed bytes of the per-sample datasets (what a row adds; file metadata excluded)."""
    import h5py

    with h5py.File(path, "r", locking=False) as f:
        g = f["splits/train"]
        return sum(g[k].id.get_storage_size() for k in g if g[k].ndim == 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=1_281_167)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rows", type=int, default=91)
    a = p.parse_args()
    n, classes = a.samples, a.classes
    traj = Trajectories(n, classes, seed=0)
    targets = torch.from_numpy(traj.targets)
    buf = DeviceBuffer(n, torch.device("cpu"))
    mb = 2**20
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "imagenet_train.h5"
        writer = StoreWriter(path, run_name="imagenet", run_id="scale")
        writer.open()
        print(f"{n} samples, {classes} classes, batches of {a.batch}; all fields (correct, pred, loss, margin, "
              "presentations)")
        for epoch in range(1, a.epochs + 1):
            r = traj.row(epoch + 30, 0)
            correct = torch.from_numpy(r["correct"])
            other = torch.from_numpy(traj.confuser)
            order = torch.from_numpy(np.random.default_rng(epoch).permutation(n))
            gen = torch.Generator().manual_seed(epoch)
            buf.reset()
            capture = 0.0
            for start in range(0, n, a.batch):
                ids = order[start:start + a.batch]
                b = len(ids)
                z = torch.randn(b, classes, generator=gen)
                t = targets[ids]
                boost = torch.where(correct[ids], t, other[ids])
                z[torch.arange(b), boost] += 6.0
                t0 = time.perf_counter()
                buf.add(compute_decisions(z, t), t, ids)
                capture += time.perf_counter() - t0
            before = stored_bytes(path) if epoch > 1 else 0
            t0 = time.perf_counter()
            arrays = gather_epoch(buf)
            writer.append(Row("train", epoch * 5005, float(epoch), RowFlag.TRAIN_PRESENTATIONS, classes,
                              arrays.evaluated, arrays.correct, arrays.pred, arrays.targets, loss=arrays.loss,
                              margin=arrays.margin, presentations=arrays.presentations.astype(np.uint8)))
            end = time.perf_counter() - t0
            grew = (stored_bytes(path) - before) / mb
            print(f"epoch {epoch}: capture {capture:.1f} s in all ({1e6 * capture / n:.2f} us/sample), gather + "
                  f"checks + write {end:.2f} s, {grew:.1f} MB on disk (target <= 12 MB), peak memory "
                  f"{peak_mb():.0f} MB")
        del buf, arrays
        t0 = time.perf_counter()
        for epoch in range(a.epochs + 1, a.rows + 1):
            r = traj.row(epoch, 0)
            writer.append(Row("train", epoch * 5005, float(epoch), RowFlag.TRAIN_PRESENTATIONS, classes,
                              r["evaluated"], r["correct"], r["pred"], traj.targets, loss=r["loss"],
                              margin=r["margin"], presentations=np.ones(n, np.uint8)))
        rest = time.perf_counter() - t0
        size = path.stat().st_size / mb
        print(f"rows {a.epochs + 1}..{a.rows} through the writer: {rest:.0f} s ({rest / (a.rows - a.epochs):.2f} s "
              f"per row); store {size:.0f} MB = {size / a.rows:.1f} MB per row")
        t0 = time.perf_counter()
        d = stream_dynamics(path, "train", burn_in=0)
        print(f"dynamics of all {a.rows} rows streamed from the store: {time.perf_counter() - t0:.0f} s; "
              f"flip-flopping {100 * d.category_fractions()['flip_flopping']:.1f} %; peak memory {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
