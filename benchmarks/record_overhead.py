"""What recording costs, measured side by side in one process (ratios, never absolute timings in tests).

(a) per-batch recording cost on captured logits (decisions + device buffer write), isolated over >= 200
    repetitions, in us per sample and as a share of torchvision's ResNet-18 forward at 32x32 (target <= 0.5 %);
(b) the epoch-end cost (gather, checks, store write, live summaries);
(c) end-to-end validation time with and without recording (W&B media on, offline) over >= 21 pairs of
    adjacent epochs of one fit, in which the recorder works on every other epoch only (so machine drift
    cancels within each pair), with a 95 % interval of the ratio (target: upper bound <= 1.02).
(c') with --separate-fits, also whole fits with and without the recorder, alternating; each arm is a ``fit`` of
    ``--epochs`` epochs with one training batch each; its time is the sum of the validation loops (from
    on_validation_start to on_validation_end, after the recorder's epoch end; work the recorder queued in its
    background thread competes for the same cores meanwhile). The wait for the queued work at the end of
    fit, after training, is printed separately as (d).

Usage: python benchmarks/record_overhead.py [--pairs 21] [--val-size 8192] [--batch 256] [--threads 1] [--no-wandb]
       [--separate-fits [--epochs 2]]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import lightning.pytorch as pl  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lightning_ddd import DecisionRecorder  # noqa: E402
from lightning_ddd.capture.buffer import DeviceBuffer  # noqa: E402
from lightning_ddd.capture.decisions import compute_decisions  # noqa: E402
from lightning_ddd.capture.gather import gather_epoch  # noqa: E402

T_975 = {20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 29: 2.045, 30: 2.042}


class ResNetModule(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torchvision.models.resnet18(num_classes=10)

    def forward(self, x):
        return self.net(x)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-4)


class EveryOtherEpoch(DecisionRecorder):
    """The recorder at work on even epochs only: adjacent epochs of one fit form the pairs of (c)."""

    def _decide_recording(self, trainer):
        if not trainer.sanity_checking and trainer.current_epoch % 2 == 1:
            return False, ""
        return super()._decide_recording(trainer)


class EpochTimer(pl.Callback):
    """Wall and CPU time of each validation loop (after every other callback's epoch end)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def on_validation_start(self, trainer, pl_module):
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.wall.append(time.perf_counter() - self.t0)
            self.cpu.append(time.process_time() - self.c0)


class ValidationTimer(pl.Callback):
    """Sums the validation loops' time and the time from the last one to the end of fit."""

    def __init__(self) -> None:
        self.total, self.start, self.last_end, self.tail = 0.0, 0.0, 0.0, 0.0
        self.cpu, self.cpu_start = 0.0, 0.0

    def on_validation_start(self, trainer, pl_module):
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()

    def on_validation_end(self, trainer, pl_module):
        self.last_end = time.perf_counter()
        if not trainer.sanity_checking:
            self.total += self.last_end - self.start
            self.cpu += time.process_time() - self.cpu_start  # all threads of this process

    def on_fit_end(self, trainer, pl_module):
        self.tail = time.perf_counter() - self.last_end


def per_batch(batch: int, reps: int) -> tuple[float, float]:
    net = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    with torch.no_grad():
        logits = net(x)
        for _ in range(3):
            net(x)
        buf = DeviceBuffer(batch * reps, torch.device("cpu"))
        ids = torch.arange(batch)
        fwd, rec, mixed = [], [], []
        block = 20
        for b in range(max(1, reps // block)):  # alternating blocks, so both see the same machine state
            for _ in range(block):
                t0 = time.perf_counter()
                net(x)
                fwd.append(time.perf_counter() - t0)
            for r in range(block):
                t0 = time.perf_counter()
                buf.add(compute_decisions(logits, y), y, ids + (b * block + r) * batch)
                rec.append(time.perf_counter() - t0)
            buf.reset()
        for _ in range(block):  # recording right after a forward (cold caches), for reference
            net(x)
            t0 = time.perf_counter()
            buf.add(compute_decisions(logits, y), y, ids)
            mixed.append(time.perf_counter() - t0)
    return statistics.median(rec), statistics.median(fwd), statistics.median(mixed)


def epoch_end(n: int, reps: int = 20) -> float:
    from lightning_ddd.analysis.dynamics import DynamicsAccumulator
    from lightning_ddd.store import Row, RowFlag, StoreWriter

    buf = DeviceBuffer(n, torch.device("cpu"))
    logits, y = torch.randn(n, 10), torch.randint(0, 10, (n,))
    buf.add(compute_decisions(logits, y), y, torch.arange(n))
    acc = DynamicsAccumulator(n)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        w = StoreWriter(Path(tmp) / "s.h5", run_name="b", run_id="b")
        w.open()
        for r in range(reps):
            t0 = time.perf_counter()
            a = gather_epoch(buf)
            w.append(Row("val", r, float(r), RowFlag.NONE, 10, a.evaluated, a.correct, a.pred, a.targets,
                         loss=a.loss, margin=a.margin))
            acc.update(a.correct, a.evaluated, pred=a.pred)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def end_to_end(pairs: int, val_size: int, batch: int, epochs: int, use_wandb: bool
               ) -> tuple[list[float], list[float], list[float]]:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(val_size, 3, 32, 32), torch.randint(0, 10, (val_size,)))
    loader = DataLoader(data, batch_size=batch)
    train = DataLoader(TensorDataset(data.tensors[0][:batch], data.tensors[1][:batch]), batch_size=batch)
    ratios, tails, cpu_ratios = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        def run(with_recorder: bool, i: int) -> tuple[float, float]:
            logger = False
            if use_wandb:
                from lightning.pytorch.loggers import WandbLogger

                logger = WandbLogger(project="bench", save_dir=tmp, offline=True)
            timer = ValidationTimer()
            callbacks = [DecisionRecorder(tmp, run_name=f"r{i}", overwrite=True)] if with_recorder else []
            t = pl.Trainer(callbacks=[*callbacks, timer], logger=logger, enable_progress_bar=False,
                           enable_model_summary=False, enable_checkpointing=False, accelerator="cpu", devices=1,
                           max_epochs=epochs, num_sanity_val_steps=-1 if with_recorder else 0)
            t.fit(ResNetModule(), train, loader)
            if use_wandb:
                logger.experiment.finish()
            if with_recorder:
                tails.append(timer.tail)
            return timer.total, timer.cpu

        run(True, -1), run(False, -1)  # warm-up
        for i in range(pairs):
            if i % 2:
                without, with_ = run(False, i), run(True, i)
            else:
                with_, without = run(True, i), run(False, i)
            ratios.append(with_[0] / without[0])
            cpu_ratios.append(with_[1] / without[1])
    return ratios, tails, cpu_ratios


def interleaved(pairs: int, val_size: int, batch: int, use_wandb: bool) -> tuple[list[float], list[float]]:
    """One fit of 2 x pairs epochs; the recorder works on even epochs only; ratio of each even epoch's
    validation time to the following odd epoch's (adjacent in time, so machine drift mostly cancels)."""
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(val_size, 3, 32, 32), torch.randint(0, 10, (val_size,)))
    loader = DataLoader(data, batch_size=batch)
    train = DataLoader(TensorDataset(data.tensors[0][:batch], data.tensors[1][:batch]), batch_size=batch)
    with tempfile.TemporaryDirectory() as tmp:
        logger = False
        if use_wandb:
            from lightning.pytorch.loggers import WandbLogger

            logger = WandbLogger(project="bench", save_dir=tmp, offline=True)
        timer = EpochTimer()
        t = pl.Trainer(callbacks=[EveryOtherEpoch(tmp, run_name="inter"), timer], logger=logger,
                       enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                       accelerator="cpu", devices=1, max_epochs=2 * pairs + 1, num_sanity_val_steps=-1)
        t.fit(ResNetModule(), train, loader)
        if use_wandb:
            logger.experiment.finish()
    # epoch 0 is a warm-up; then (1: off, 2: on) ... pair each recorded epoch with the unrecorded one before it
    wall = [timer.wall[i + 1] / timer.wall[i] for i in range(1, len(timer.wall) - 1, 2)]
    cpu = [timer.cpu[i + 1] / timer.cpu[i] for i in range(1, len(timer.cpu) - 1, 2)]
    return wall, cpu


def _interval(values: list[float]) -> tuple[float, float]:
    mean, sd = statistics.mean(values), statistics.stdev(values)
    return mean, T_975.get(len(values) - 1, 2.0) * sd / np.sqrt(len(values))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=21)
    p.add_argument("--val-size", type=int, default=8192)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--no-wandb", action="store_true")
    p.add_argument("--separate-fits", action="store_true",
                   help="also compare whole fits with and without the recorder (noisier: minutes apart)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: steadier timings on a shared machine, and the "
                        "situation of GPU training, where the training thread issues work and other cores idle)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rec, fwd, mixed = per_batch(a.batch, a.reps)
    print(f"(a) per-batch recording, batch {a.batch}, isolated, median of {a.reps}: {1e6 * rec / a.batch:.3f} "
          f"us/sample; ResNet-18 forward at 32x32 {1e6 * fwd / a.batch:.1f} us/sample; share {100 * rec / fwd:.3f} % "
          f"(target <= 0.5 %); right after a forward (cold caches): {100 * mixed / fwd:.3f} %")
    for n in (10_000, 50_000):
        print(f"(b) epoch end for {n} samples (gather, checks, write, live summaries): {1e3 * epoch_end(n):.1f} ms")
    media = "" if a.no_wandb else " (W&B media on, offline)"
    wall, cpu = interleaved(a.pairs, a.val_size, a.batch, not a.no_wandb)
    for label, values in (("wall time", wall), ("CPU time of the process, all threads", cpu)):
        mean, half = _interval(values)
        print(f"(c) validation epochs with / without recording{media}, {len(values)} adjacent pairs of epochs in "
              f"one fit, {a.val_size} images, {label}: ratio {mean:.4f}, 95 % interval [{mean - half:.4f}, "
              f"{mean + half:.4f}] (target: upper <= 1.02)")
    if a.separate_fits:
        ratios, tails, cpu_ratios = end_to_end(a.pairs, a.val_size, a.batch, a.epochs, not a.no_wandb)
        for label, values in (("wall time", ratios), ("CPU time of the process, all threads", cpu_ratios)):
            mean, half = _interval(values)
            print(f"(c') whole fits with / without the recorder{media}, {len(values)} alternating pairs, "
                  f"{a.epochs} epochs of {a.val_size} images, {label}: ratio {mean:.4f}, 95 % interval "
                  f"[{mean - half:.4f}, {mean + half:.4f}]")
        print(f"(d) after training, waiting for the recorder's queued work at the end of fit (last row, final "
              f"hard-samples table): median {1e3 * statistics.median(tails):.0f} ms")


if __name__ == "__main__":
    main()
