"""Stores written through the real StoreWriter from synthetic correctness (no training), for tests of readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_ddd.store import Row, RowFlag, StoreWriter


def write_store(path: Path, name: str, seed: int, *, n: int = 300, epochs: int = 4, classes: int = 5,
                split: str = "val", difficulty: np.ndarray | None = None, thumbnails: bool = False,
                class_names: list[str] | None = None) -> Path:
    """A store of ``epochs + 1`` rows (epoch 0 flagged before training) whose samples have a shared
    difficulty (so runs agree beyond chance) plus run-specific noise; with ``thumbnails``, the first row
    carries :func:`sample_images` of every id."""
    rng = np.random.default_rng(seed)
    shared = np.random.default_rng(12345)
    targets = shared.integers(0, classes, n)
    ease = difficulty if difficulty is not None else shared.random(n)
    w = StoreWriter(path, run_name=name, run_id=f"id-{name}-{seed}", metadata={"seed": seed})
    w.open()
    for e in range(epochs + 1):
        p_correct = np.clip(ease * (0.4 + 0.6 * e / max(epochs, 1)) + 0.1 * rng.standard_normal(n), 0, 1)
        correct = rng.random(n) < p_correct
        wrong = (targets + 1 + rng.integers(0, classes - 1, n)) % classes
        pred = np.where(correct, targets, wrong)
        flags = RowFlag.BEFORE_TRAINING if e == 0 else RowFlag.NONE
        loss = np.where(correct, 0.2, 2.0).astype(np.float32) + rng.random(n).astype(np.float32) * 0.1
        extra = {}
        if thumbnails and e == 0:
            extra = {"thumbnail_ids": np.arange(n), "thumbnails": sample_images(n), "class_names": class_names}
        w.append(Row(split, e * 10, float(e), flags, classes, np.ones(n, bool), correct, pred, targets,
                     loss=loss, margin=(1.0 - loss).astype(np.float32), **extra))
    return path


def sample_images(n: int, h: int = 12, w: int = 10) -> np.ndarray:
    """One distinct RGB image per id (K, h, w, 3) uint8: the id's digits as colours plus a seeded pattern."""
    rng = np.random.default_rng(777)
    base = rng.integers(0, 256, (n, h, w, 3)).astype(np.uint8)
    ids = np.arange(n)
    base[:, 0, 0, 0], base[:, 0, 0, 1], base[:, 0, 0, 2] = ids % 256, (ids // 256) % 256, 255
    return base


def write_runs(folder: Path, names: list[str], **kw: object) -> Path:
    """Several runs of one synthetic dataset in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        write_store(folder / f"{name}.h5", name, i, **kw)  # type: ignore[arg-type]
    return folder
