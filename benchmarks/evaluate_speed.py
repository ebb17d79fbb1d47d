"""``lightning-ddd evaluate`` against a plain ``torch.no_grad()`` loop over the same loader (issue 24.5).

Both evaluate torchvision's ResNet-18 (random weights, no download) on the same in-memory images, alternately,
``--pairs`` times; the ratio evaluate / plain (median over pairs, with the pairs' range) says what Lightning's
Trainer and the recording add to the model's forward pass. The evaluate arm is timed without its store
write (the rows go through the recorder's background writer) and without process start-up.

Usage: python benchmarks/evaluate_speed.py [--pairs 5] [--n 2048] [--size 96] [--batch 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

DATA: dict[str, object] = {}


def dataset():  # noqa: ANN201 - the MODULE:FACTORY the evaluate arm loads
    return DATA["ds"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    import torchvision
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_ddd.evaluate import evaluate_models

    g = torch.Generator().manual_seed(0)
    DATA["ds"] = TensorDataset(torch.rand(a.n, 3, a.size, a.size, generator=g),
                               torch.randint(0, 1000, (a.n,), generator=g))
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    script = Path(tempfile.mkdtemp()) / "resnet18.pt"
    torch.jit.script(model).save(str(script))
    model = torch.jit.load(str(script)).eval()  # both arms run the same TorchScript model
    sys.modules.setdefault("evaluate_speed_data", sys.modules[__name__])
    plain, ours = [], []
    for _ in range(a.pairs):
        loader = DataLoader(DATA["ds"], batch_size=a.batch)
        t0 = time.perf_counter()
        with torch.no_grad():
            for x, _ in loader:
                model(x).argmax(1)
        plain.append(time.perf_counter() - t0)
        out = Path(tempfile.mkdtemp())
        t0 = time.perf_counter()
        evaluate_models([f"torchscript:{script}"], "evaluate_speed_data:dataset", out, batch_size=a.batch,
                        accelerator="cpu", devices=1, say=lambda _m: None)
        ours.append(time.perf_counter() - t0)
    ratios = [o / q for o, q in zip(ours, plain)]
    print(f"evaluate_speed: {a.n} images {a.size}x{a.size}, ResNet-18, batch {a.batch}, {a.threads} threads, "
          f"{a.pairs} pairs")
    print(f"  plain no_grad loop: median {statistics.median(plain):.2f} s; lightning-ddd evaluate: median "
          f"{statistics.median(ours):.2f} s")
    print(f"  ratio evaluate / plain: median {statistics.median(ratios):.3f} (range {min(ratios):.3f} to "
          f"{max(ratios):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
