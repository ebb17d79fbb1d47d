"""Report speed: ``lightning-ddd report`` for 20 runs x 91 rows x 50,000 samples (synthetic stores with
realistic trajectories), median of 3, beside the time it takes just to read those arrays (so the ratio can
be compared across machines). Target: under 60 s on a 2-core machine.

Usage: python benchmarks/report_speed.py [--runs 20] [--rows 91] [--samples 50000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import Trajectories, write_store  # noqa: E402

from lightning_ddd.analysis import find_stores  # noqa: E402
from lightning_ddd.cli import main as cli  # noqa: E402
from lightning_ddd.store import DecisionStore  # noqa: E402


def read_all(folder: Path) -> float:
    t0 = time.perf_counter()
    for path in find_stores(folder):
        s = DecisionStore(path)
        for field in ("correct", "evaluated", "pred"):
            s.read("val", field)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--rows", type=int, default=91)
    p.add_argument("--samples", type=int, default=50_000)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    traj = Trajectories(a.samples, 1000, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        stores = Path(tmp) / "stores"
        stores.mkdir()
        t0 = time.perf_counter()
        for r in range(a.runs):
            write_store(stores / f"run-{r}.h5", traj, a.rows, run_seed=r, run_name=f"run-{r}")
        print(f"wrote {a.runs} stores of {a.rows} rows x {a.samples} samples in {time.perf_counter() - t0:.0f} s")
        reads, reports = [], []
        for i in range(a.repeats):
            reads.append(read_all(stores))
            t0 = time.perf_counter()
            assert cli(["report", str(stores), "--out", str(Path(tmp) / f"report{i}"), "--quiet",
                        "--conditions", "auto"]) == 0
            reports.append(time.perf_counter() - t0)
    rd, rp = statistics.median(reads), statistics.median(reports)
    print(f"report (1000 bootstrap resamples, {a.runs} runs, figures, HTML): median {rp:.1f} s of {a.repeats} "
          f"(target < 60 s); reading correct/evaluated/pred of every store: {rd:.1f} s; ratio {rp / rd:.1f}x")


if __name__ == "__main__":
    main()
