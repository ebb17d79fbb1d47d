"""Report speed: ``lightning-ddd report`` for 20 runs x 91 rows x 50,000 samples (synthetic stores with
realistic trajectories) with 64 x 64 x 3 thumbnails in the stores, median of 3, beside the time it takes just
to read those arrays (so the ratio can be compared across machines), and the report folder's size. Target:
under 60 s on a 2-core machine. With chromium and Playwright present, the explorer is also timed in the
browser: page load to the first page of rows, and a filter + sort over all samples.

Usage: python benchmarks/report_speed.py [--runs 20] [--rows 91] [--samples 50000] [--repeats 3] [--no-thumbnails]
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
from thumbnail_cost import natural_thumbnails  # noqa: E402

from lightning_ddd.analysis import find_stores
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
    p.add_argument("--no-thumbnails", action="store_true")
    a = p.parse_args()
    traj = Trajectories(a.samples, 1000, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        stores = Path(tmp) / "stores"
        stores.mkdir()
        t0 = time.perf_counter()
        for r in range(a.runs):
            write_store(stores / f"run-{r}.h5", traj, a.rows, run_seed=r, run_name=f"run-{r}",
                        thumbnails=None if a.no_thumbnails or r else natural_thumbnails(a.samples))
        print(f"wrote {a.runs} stores of {a.rows} rows x {a.samples} samples in {time.perf_counter() - t0:.0f} s")
        reads, reports = [], []
        for i in range(a.repeats):
            reads.append(read_all(stores))
            t0 = time.perf_counter()
            assert cli(["report", str(stores), "--out", str(Path(tmp) / f"report{i}"), "--quiet",
                        "--conditions", "auto"]) == 0
            reports.append(time.perf_counter() - t0)
        folder = Path(tmp) / "report0"
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
        files = sum(1 for f in folder.rglob("*") if f.is_file())
        browser = explorer_in_browser(folder)
    rd, rp = statistics.median(reads), statistics.median(reports)
    print(f"report (1000 bootstrap resamples, {a.runs} runs, figures, galleries, explorer, HTML"
          f"{'' if a.no_thumbnails else ', thumbnails'}): median {rp:.1f} s of {a.repeats} (target < 60 s); "
          f"reading correct/evaluated/pred of every store: {rd:.1f} s; ratio {rp / rd:.1f}x; "
          f"folder {size:.0f} MiB in {files} files")
    if browser:
        print(f"explorer in chromium: first page of rows {browser[0]:.2f} s after navigation; filter to impossible "
              f"and sort by forgetting events over {a.samples} samples: {browser[1] * 1000:.0f} ms")


def explorer_in_browser(folder: Path) -> tuple[float, float] | None:
    """Seconds from navigation to the explorer's first page, and of one filter + sort (None without a browser)."""
    import shutil

    path = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        return None
    if path is None:
        return None
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        page = b.new_page()
        t0 = time.perf_counter()
        page.goto((folder / "index.html").as_uri())
        page.wait_for_selector("#explorer-list tr[data-id]")
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        page.select_option("#explorer-group", "difficulty:impossible")
        page.select_option("#explorer-sort", "forgetting")
        page.wait_for_selector("#explorer-list tr[data-id]")
        sort = time.perf_counter() - t0
        b.close()
    return load, sort


if __name__ == "__main__":
    main()
