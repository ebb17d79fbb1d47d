"""Size of the store: correctness of 50,000 samples x 91 rows with realistic trajectories (target <= 2 MB).

Usage: python benchmarks/store_size.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import Trajectories, write_store  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.h5"
        write_store(path, Trajectories(50_000, 1000, seed=0), rows=91, run_seed=1)
        with h5py.File(path, "r") as f:
            g = f["splits/val"]
            sizes = {name: g[name].id.get_storage_size() for name in g if g[name].ndim == 2}
        total = path.stat().st_size
    mb = 1024 * 1024
    print("50,000 samples x 91 rows, realistic trajectories, gzip level 4:")
    for name, size in sorted(sizes.items()):
        print(f"  {name:<10} {size / mb:7.2f} MB")
    print(f"  file total {total / mb:7.2f} MB")
    verdict = "OK" if sizes["correct"] <= 2 * mb else "ABOVE TARGET"
    print(f"correctness: {sizes['correct'] / mb:.2f} MB (target <= 2 MB): {verdict}")


if __name__ == "__main__":
    main()
