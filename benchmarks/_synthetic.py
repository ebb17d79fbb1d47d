"""Realistic synthetic decision trajectories for the benchmarks (numpy only).

Samples are trivial (learned within the first epochs and kept), impossible (never learned, a stable wrong
class), or in-between (learned at a random epoch, then flipping with a small probability per epoch), in
the proportions the paper reports for ImageNet (about 46 / 12 / 42 %). Runs share the per-sample difficulty,
so their decisions are consistent the way real models' are.
"""

from __future__ import annotations

import numpy as np


class Trajectories:
    """Per-sample difficulty shared by every run of one synthetic experiment.

    Args:
        n: samples; classes: classes; seed: seed of the shared difficulty.
    """

    def __init__(self, n: int, classes: int = 1000, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.n, self.classes = n, classes
        u = rng.random(n)
        self.kind = np.where(u < 0.46, 0, np.where(u < 0.58, 2, 1))  # 0 trivial, 1 in-between, 2 impossible
        self.targets = rng.integers(0, classes, n)
        self.confuser = (self.targets + rng.integers(1, classes, n)) % classes
        self.learn_at = np.where(self.kind == 0, rng.geometric(0.5, n), rng.integers(1, 60, n))
        self.flip_p = np.where(self.kind == 1, rng.uniform(0.02, 0.3, n), 0.0)

    def row(self, epoch: int, run_seed: int) -> dict[str, np.ndarray]:
        """One evaluation of one run: correct, pred, loss, margin, evaluated."""
        rng = np.random.default_rng((run_seed, epoch))
        learned = (self.kind != 2) & (epoch >= self.learn_at + rng.integers(-2, 3, self.n))
        flip = rng.random(self.n) < self.flip_p
        correct = learned & ~flip if epoch > 0 else rng.random(self.n) < 1 / self.classes
        other = np.where(rng.random(self.n) < 0.9, self.confuser, rng.integers(0, self.classes, self.n))
        pred = np.where(correct, self.targets, other)
        prob = np.where(correct, rng.uniform(0.4, 1.0, self.n), rng.uniform(0.0, 0.4, self.n))
        margin = np.where(correct, rng.gamma(2.0, 1.5, self.n), -rng.gamma(2.0, 1.5, self.n))
        return {"correct": correct, "pred": pred, "loss": (-np.log(prob + 1e-6)).astype(np.float32),
                "margin": margin.astype(np.float32), "evaluated": np.ones(self.n, bool)}


def write_store(path, traj: Trajectories, rows: int, run_seed: int, fields=("loss", "margin"),
                run_name: str | None = None, thumbnails=None) -> None:
    """Write ``rows`` rows of one synthetic run through the real store writer (``thumbnails``: an iterable of
    ``(ids, images)`` chunks, one per row from the first)."""
    from lightning_ddd.store import Row, RowFlag, StoreWriter

    w = StoreWriter(path, run_name=run_name or f"run{run_seed}", run_id=f"synthetic-{run_seed}")
    w.open()
    for e in range(rows):
        r = traj.row(e, run_seed)
        ids, images = next(thumbnails, (None, None)) if thumbnails is not None else (None, None)
        w.append(Row("val", e * 1000, float(e), RowFlag.BEFORE_TRAINING if e == 0 else RowFlag.NONE,
                     traj.classes, r["evaluated"], r["correct"], r["pred"], traj.targets,
                     loss=r["loss"] if "loss" in fields else None, margin=r["margin"] if "margin" in fields else None,
                     thumbnail_ids=ids, thumbnails=images))
