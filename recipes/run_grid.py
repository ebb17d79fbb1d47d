"""Run the paper's condition grid for a recipe: locally, one run after another (finished runs are skipped,
interrupted ones resume from their last checkpoint), one run of it (``--run``, as a SLURM array task does),
or write a SLURM array script (``--slurm FILE``).

Usage::

    python recipes/run_grid.py recipes/configs/cifar10.yaml --out runs/cifar10 -- --data.root /data/cifar
    python recipes/run_grid.py recipes/configs/imagenet.yaml --out runs/imagenet --slurm grid.sbatch \
        --nodes 1 --gpus-per-node 4 -- --data.root /data/imagenet --data.batch_size 64
    lightning-ddd report runs/cifar10/stores --out runs/cifar10/report --conditions runs/cifar10/conditions.json

Arguments after ``--`` go to every run's ``train.py fit`` call.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from lightning_ddd.grid import GridRunner, RunSpec, conditions_of, paper_grid, write_slurm_array

HERE = Path(__file__).resolve().parent
OPTION = {"init_seed": "--model.init_seed", "order_seed": "--data.order_seed", "lr": "--model.lr",
          "batch_size": "--data.batch_size", "optimizer": "--model.optimizer", "arch": "--model.arch",
          "subset": "--data.subset", "deterministic": "--trainer.deterministic", "benchmark": "--trainer.benchmark",
          "replica": None}


def grid_for(config: dict, repeats: int, nondeterministic: int = 5) -> list[RunSpec]:
    """The §3 grid around a recipe's base configuration (DenseNet-121 at batch 64 as the architecture change),
    with the CUDA non-determinism condition (``nondeterministic`` runs; 0 to leave it out)."""
    bs = int(config["data"]["batch_size"])
    return paper_grid(repeats=repeats, lr=float(config["model"]["lr"]), batch_size=bs, alt_arch="densenet121",
                      alt_batch_size=max(1, bs // 4), plus_epochs=10, nondeterministic=nondeterministic)


def run_args(spec: RunSpec, config_path: str, config: dict, out: Path, ckpt: str | None, extra: list[str]) -> list[str]:
    """The ``train.py fit`` command of one run."""
    args = [sys.executable, str(HERE / "train.py"), "fit", "--config", config_path,
            "--recorder.run_name", spec.name, "--recorder.dirpath", str(out / "stores"),
            "--checkpoint.dirpath", str(out / "checkpoints" / spec.name),
            "--trainer.max_epochs", str(int(config["trainer"]["max_epochs"]) + spec.extra_epochs)]
    for key, value in spec.changes.items():
        if OPTION[key] is not None:  # "replica" only tells non-determinism replicas apart
            args += [OPTION[key], str(value).lower() if isinstance(value, bool) else str(value)]
    if ckpt:
        args += ["--ckpt_path", ckpt]
    return args + extra


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="a recipe configuration (recipes/configs/*.yaml)")
    p.add_argument("--out", required=True, help="experiment folder: stores/, checkpoints/, done/")
    p.add_argument("--repeats", type=int, default=5, help="runs per repeated condition (paper: 5)")
    p.add_argument("--nondeterministic", type=int, default=5,
                   help="runs of the CUDA non-determinism condition (paper: 5; 0 leaves it out, e.g. on CPUs)")
    p.add_argument("--run", default=None, help="run only this run of the grid (a SLURM array task)")
    p.add_argument("--slurm", default=None, help="write a SLURM array script to this file instead of running")
    p.add_argument("--nodes", type=int, default=1, help="SLURM nodes per run")
    p.add_argument("--gpus-per-node", type=int, default=4, help="SLURM GPUs per node")
    p.add_argument("--time", default="72:00:00", help="SLURM time limit per run")
    p.add_argument("--partition", default=None, help="SLURM partition")
    p.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    a = p.parse_args(argv)
    config = yaml.safe_load(Path(a.config).read_text())
    grid = grid_for(config, a.repeats, a.nondeterministic)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs = int(config["trainer"]["max_epochs"])
    (out / "conditions.json").write_text(json.dumps({"conditions": conditions_of(grid), "comparison_epoch": epochs},
                                                    indent=1))
    if a.slurm:
        tail = " ".join(shlex.quote(x) for x in ["--", *extra]) if extra else ""
        command = f"python {shlex.quote(str(HERE / 'run_grid.py'))} {shlex.quote(a.config)} --out " \
                  f"{shlex.quote(str(out))} --repeats {a.repeats} --nondeterministic {a.nondeterministic} " \
                  f"--run $RUN {tail}".strip()
        path = write_slurm_array(grid, a.slurm, command, nodes=a.nodes, gpus_per_node=a.gpus_per_node, time=a.time,
                                 partition=a.partition)
        print(f"wrote {path}: sbatch {path}")
        return 0
    if a.run:
        grid = [s for s in grid if s.name == a.run]
        if not grid:
            print(f"error: no run {a.run!r} in the grid", file=sys.stderr)
            return 1

    def train(spec: RunSpec, ckpt: str | None, paths: dict) -> None:
        subprocess.run(run_args(spec, a.config, config, out, ckpt, extra), check=True)

    runner = GridRunner(out, train, progress=lambda m: print(m, file=sys.stderr, flush=True))
    if a.dry_run:
        for spec in grid:
            state = runner.status(spec)
            ckpt = str(runner.paths(spec)["checkpoints"] / "last.ckpt") if state == "interrupted" else None
            cmd = run_args(spec, a.config, config, out, ckpt, extra)
            print(f"# {spec.name} ({spec.condition}): {state}\n" + " ".join(shlex.quote(c) for c in cmd))
        return 0

    print(json.dumps(runner.run(grid)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
