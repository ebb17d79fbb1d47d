"""The torch / Lightning matrix beyond CI: install a few pairs into throwaway environments, run the core tests.

Usage::

    python benchmarks/compat_matrix.py                    # every pair below, one after another
    python benchmarks/compat_matrix.py --pair 2.1.2:2.1.0 # torch 2.1.2 with lightning 2.1.0 only

Each pair gets a fresh virtual environment (Python 3.11) holding that torch (a CUDA build from PyPI: about
3 GB of downloads, run on the CPU here), that lightning and pytorch-lightning, and the other dependencies at
versions of the same period; the project is installed with ``--no-deps`` and the core tests
(``.ci/core-tests.txt``) run. The environment is deleted afterwards. Results are appended to
``benchmarks/results/compat_matrix.json`` and printed as the README's table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "compat_matrix.json"

# torch, lightning, and the companions of their period (torch < 2.3 was built against numpy 1.x)
PAIRS = {
    "2.1.2:2.1.0": ["torch==2.1.2", "lightning==2.1.0", "pytorch-lightning==2.1.0", "numpy==1.24.0",
                    "setuptools<81", "jsonargparse[signatures]==4.27.7"],
    "2.4.1:2.4.0": ["torch==2.4.1", "lightning==2.4.0", "pytorch-lightning==2.4.0", "numpy==1.26.4",
                    "setuptools<81", "jsonargparse[signatures]==4.32.1"],
    "2.8.0:newest": ["torch==2.8.0", "lightning", "pytorch-lightning", "numpy", "jsonargparse[signatures]"],
}
COMMON = ["h5py==3.8.0", "matplotlib==3.7.0", "wandb==0.16.0", "scikit-learn==1.3.2", "scipy==1.11.4",
          "pyarrow==14.0.2", "pyyaml==6.0.1", "pytest==7.4.4", "hypothesis==6.90.0"]
COMMON_NEWEST = ["h5py", "matplotlib", "wandb", "scikit-learn", "scipy", "pyarrow", "pyyaml", "pytest", "hypothesis"]


def run_pair(key: str, python: str) -> dict:
    """Install one pair into a temporary environment, run the core tests, return the result."""
    packages = PAIRS[key] + (COMMON_NEWEST if key.endswith("newest") else COMMON)
    work = Path(tempfile.mkdtemp(prefix="ddd-matrix-"))
    venv = work / "venv"
    src = work / "src"  # a snapshot of the committed tree: edits during the run do not leak in
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result: dict = {"pair": key, "date": datetime.date.today().isoformat(), "python": python, "commit": commit}
    start = time.time()
    try:
        src.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        env = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}
        env["PIP_CONFIG_FILE"] = os.devnull  # the local torch cap does not apply to older releases
        done = subprocess.run(pip + packages, capture_output=True, text=True, env=env)
        if done.returncode:
            result.update(status="install failed", detail=done.stderr[-1500:])
            return result
        subprocess.run(pip + ["--no-deps", "-e", str(src)], check=True, capture_output=True, env=env)
        versions = subprocess.run(
            [str(venv / "bin" / "python"), "-c",
             "import importlib.metadata as m, sys; print(sys.version.split()[0], *(m.version(p) for p in "
             "('torch', 'lightning', 'pytorch-lightning', 'numpy', 'h5py')))"],
            capture_output=True, text=True, check=True).stdout.split()
        result["versions"] = dict(zip(["python", "torch", "lightning", "pytorch-lightning", "numpy", "h5py"],
                                      versions))
        tests = (src / ".ci" / "core-tests.txt").read_text().split()
        test_env = dict(os.environ)
        major_minor = tuple(int(x) for x in re.findall(r"\d+", versions[2])[:2])
        if major_minor < (2, 5):  # older Lightning calls torch.load without weights_only
            test_env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
        done = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                              cwd=src, capture_output=True, text=True, env=test_env)
        tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
        result.update(status="passed" if done.returncode == 0 else "failed", summary=tail)
        if done.returncode:
            result["failures"] = [ln for ln in done.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))][:20]
    finally:
        result["seconds"] = round(time.time() - start)
        shutil.rmtree(work, ignore_errors=True)
    return result


def table(results: list[dict]) -> str:
    """The README's table: the latest result of each pair."""
    latest = {}
    for r in results:
        latest[r["pair"]] = r
    lines = ["| date | commit | Python | torch | lightning / pytorch-lightning | numpy | h5py | core tests |",
             "|---|---|---|---|---|---|---|---|"]
    for r in latest.values():
        v = r.get("versions", {})
        torch_version = v.get("torch", r["pair"].split(":")[0])
        lines.append(f"| {r['date']} | {r.get('commit', '?')} | {v.get('python', '?')} | {torch_version} | "
                     f"{v.get('lightning', '?')} / {v.get('pytorch-lightning', '?')} | {v.get('numpy', '?')} | "
                     f"{v.get('h5py', '?')} | {r['status']}: {r.get('summary', r.get('detail', ''))[:80]} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pair", action="append", choices=sorted(PAIRS), help="run only these pairs")
    p.add_argument("--python", default=shutil.which("python3.11") or sys.executable, help="Python for the envs")
    a = p.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    for key in a.pair or list(PAIRS):
        print(f"[matrix] {key} ...", file=sys.stderr, flush=True)
        r = run_pair(key, a.python)
        print(f"[matrix] {key}: {r['status']} ({r.get('summary', '')}) in {r['seconds']} s", file=sys.stderr,
              flush=True)
        results.append(r)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0 if all(r["status"] == "passed" for r in results[-len(a.pair or PAIRS):]) else 1


if __name__ == "__main__":
    sys.exit(main())
