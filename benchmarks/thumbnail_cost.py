"""What thumbnails cost: store size for 50,000 ImageNet-size validation images, and the extra time of the first
validation epoch, both beside a baseline in the same run.

(1) Size: 50,000 thumbnails of 64 x 64 x 3 (what a 224 x 224 input becomes) with natural-image statistics
    (1/f noise per channel, correlated across channels), written through the real store writer after one
    row; the file grows by the thumbnails' compressed size (raw: 50,000 x 12,288 B = 586 MiB).
(2) Time: a real Lightning validation epoch (2,000 images of 3 x 224 x 224, batch 100, a small conv net on
    the CPU) with thumbnails on and off, alternated, median of 3 each, timed on the training thread from
    validation start to the end of the recorder's epoch end (capture, gather, row); the compressed write of
    (1) runs in the recorder's background thread, overlapping training. The ratio is the cost. On a GPU the
    downsampling is a few kernels per batch beside a network's hundreds, so the CPU ratio with a tiny net is
    an upper bound.

Usage: python benchmarks/thumbnail_cost.py [--samples 50000] [--images 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def natural_thumbnails(n: int, size: int = 64, seed: int = 0, chunk: int = 2000):
    """Yield (ids, images) chunks of 1/f-noise RGB images (uint8), a stand-in for downsampled photographs."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / size)
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        phase = rng.uniform(0, 2 * np.pi, (k, size, size))
        base = np.real(np.fft.ifft2(amp * np.exp(1j * phase)))
        tint = rng.normal(0, 0.15, (k, 1, 1, 3))
        img = base[..., None] * (1 + tint) + rng.normal(0, 0.02, (k, size, size, 3))
        lo = img.min(axis=(1, 2, 3), keepdims=True)
        hi = img.max(axis=(1, 2, 3), keepdims=True)
        yield np.arange(start, start + k), np.round((img - lo) / (hi - lo) * 255).astype(np.uint8)


def store_size(n: int, folder: Path) -> tuple[float, float, float]:
    """Store size without and with thumbnails (MiB), and the seconds the thumbnails' write took."""
    from lightning_ddd.store import Row, RowFlag, StoreWriter

    targets = np.arange(n) % 1000

    def row(step: int, thumbs=None) -> Row:
        ids, images = thumbs if thumbs is not None else (None, None)
        return Row("val", step, float(step), RowFlag.BEFORE_TRAINING if step == 0 else RowFlag.NONE, 1000,
                   np.ones(n, bool), np.zeros(n, bool), targets.copy(), targets, thumbnail_ids=ids,
                   thumbnails=images)

    sizes, seconds = [], 0.0
    for with_thumbs in (False, True):
        path = folder / f"thumbs-{with_thumbs}.h5"
        w = StoreWriter(path, run_name="size", run_id=f"size-{with_thumbs}")
        w.open()
        w.append(row(0))
        if with_thumbs:
            for step, chunk in enumerate(natural_thumbnails(n), start=1):
                t0 = time.perf_counter()
                w.append(row(step, chunk))
                seconds += time.perf_counter() - t0
        else:
            for step in range(1, -(-n // 2000) + 1):
                w.append(row(step))
        sizes.append(path.stat().st_size / 2**20)
    return sizes[0], sizes[1], seconds


def epoch_times(images: int, repeats: int, folder: Path) -> tuple[list[float], list[float]]:
    """Seconds of one recorded validation epoch, thumbnails off and on (alternated)."""
    import lightning.pytorch as pl
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_ddd import DecisionRecorder

    class Net(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 7, stride=4), torch.nn.ReLU(),
                                           torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(256, 10))

        def forward(self, x):
            return self.net(x)

        def validation_step(self, batch, batch_idx):
            return F.cross_entropy(self(batch[0]), batch[1])

    class Clock(pl.Callback):
        """From validation start to the end of the recorder's epoch end (the training thread's time; the
        store write itself runs in the recorder's background thread, h5py releasing the GIL)."""

        def on_validation_start(self, trainer, pl_module):
            self.t0 = time.perf_counter()

        def on_validation_epoch_end(self, trainer, pl_module):
            self.seconds = time.perf_counter() - self.t0

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn((images, 3, 224, 224), generator=g), torch.randint(0, 10, (images,), generator=g))
    loader = DataLoader(data, batch_size=100)
    off, on = [], []
    for r in range(repeats):
        for thumbs, out in ((False, off), (True, on)):
            rec = DecisionRecorder(folder / f"run-{r}-{thumbs}", run_name="t", thumbnails=thumbs, log_summaries=False)
            clock = Clock()
            t = pl.Trainer(callbacks=[rec, clock], logger=False, enable_progress_bar=False, enable_model_summary=False,
                           accelerator="cpu", devices=1, enable_checkpointing=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t.validate(Net(), loader, verbose=False)
                out.append(clock.seconds)
    return off, on


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=50_000)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        without, with_, secs = store_size(a.samples, Path(tmp))
        raw = a.samples * 64 * 64 * 3 / 2**20
        print(f"(1) {a.samples} thumbnails of 64 x 64 x 3: raw {raw:.0f} MiB; the store grows from {without:.1f} to "
              f"{with_:.1f} MiB (+{with_ - without:.0f} MiB, {(with_ - without) / raw:.0%} of raw); writing them took "
              f"{secs:.1f} s (in the background writer, once)")
        off, on = epoch_times(a.images, a.repeats, Path(tmp))
        mo, mn = statistics.median(off), statistics.median(on)
        print(f"(2) first validation epoch, {a.images} images of 3 x 224 x 224 on the CPU: {mo:.2f} s without, "
              f"{mn:.2f} s with thumbnails (median of {a.repeats}); ratio {mn / mo:.2f}x, "
              f"+{(mn - mo) / a.images * 1000:.2f} s per 1,000 images")


if __name__ == "__main__":
    main()
