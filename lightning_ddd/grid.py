"""The paper's controlled experiment (``../shared/paper.md`` §3) as a grid of runs, and a runner for it.

A grid is a list of :class:`RunSpec`: a run name, its condition, and the settings it changes from the base.
:func:`paper_grid` builds the §3 grid for any base configuration (the CPU demo and the full-scale recipes
share it). :class:`GridRunner` executes runs one after another, skips finished runs (a ``.done`` marker)
and resumes interrupted ones from their last checkpoint; :func:`write_slurm_array` writes a SLURM array
script that runs the same grid on a cluster, one array task per run. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lightning_ddd.analysis.comparison import DIFFERENT_DATA


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of the grid.

    Attributes:
        name: run name (store file ``<name>.h5``).
        condition: the condition it belongs to (runs of one condition differ only by repetition).
        changes: settings that differ from the base configuration.
        extra_epochs: epochs trained beyond the comparison epoch (the base run, for "+1" and "+10").
    """

    name: str
    condition: str
    changes: dict[str, Any] = dataclasses.field(default_factory=dict)
    extra_epochs: int = 0

    def config(self, base: dict[str, Any]) -> dict[str, Any]:
        """The run's full configuration: the base with this run's changes."""
        return {**base, **self.changes}


def lr_factors_for(repeats: int, low: float = 1.48, high: float = 1.52) -> list[float]:
    """Distinct learning-rate multipliers, one per repeat, evenly spaced in [low, high].

    With the paper's 5 repeats and base lr 0.1: 0.148, 0.149, 0.150, 0.151, 0.152; with 3: x1.48, 1.50, 1.52.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    if repeats == 1:
        return [round((low + high) / 2, 6)]
    return [round(low + (high - low) * i / (repeats - 1), 6) for i in range(repeats)]


def paper_grid(*, repeats: int = 3, lr: float = 0.1, batch_size: int = 256, alt_arch: str = "densenet121",
               alt_batch_size: int | None = None, lr_factors: Sequence[float] | None = None,
               plus_epochs: int = 10, combined: bool = True, nondeterministic: int = 0) -> list[RunSpec]:
    """The one-factor conditions of the paper's §3.

    Args:
        repeats: runs per repeated condition (initialisation, data order, learning rate); the paper used 5.
        lr: the base learning rate (the paper's 0.1; its lr condition used 0.148 to 0.152).
        batch_size: the base batch size; the batch-size condition halves it.
        alt_arch: the architecture of the architecture condition (the paper: DenseNet-121).
        alt_batch_size: batch size of the architecture condition (the paper: 64 for DenseNet-121).
        lr_factors: learning-rate multipliers of the lr condition, one distinct value per repeat (default
            :func:`lr_factors_for`).
        plus_epochs: extra epochs of the base run, for the "+1" and "+n" comparisons.
        combined: add the run that changes architecture, optimizer, init, order and lr together.
        nondeterministic: runs of the CUDA non-determinism condition (the paper: 5): the base's seeds with
            ``deterministic=False`` and ``benchmark=True`` (cuDNN autotuning), so they differ only by GPU
            non-determinism. Only meaningful on GPUs.

    Returns:
        The run specifications, the base first.

    Raises:
        ValueError: fewer learning-rate factors than repeats, or two runs that would be identical.
    """
    factors = list(lr_factors) if lr_factors is not None else lr_factors_for(repeats)
    if len(factors) != repeats:
        raise ValueError(f"The lr condition needs {repeats} distinct learning-rate factors (one per repeat), got "
                         f"{factors}.")
    grid = [RunSpec("base", "base", {}, extra_epochs=plus_epochs)]
    grid += [RunSpec(f"init-{i}", "init", {"init_seed": i}) for i in range(1, repeats + 1)]
    grid += [RunSpec(f"order-{i}", "order", {"order_seed": i}) for i in range(1, repeats + 1)]
    grid += [RunSpec(f"lr-{i + 1}", "lr", {"lr": round(lr * f, 6)}) for i, f in enumerate(factors)]
    grid.append(RunSpec("batch", "batch size", {"batch_size": batch_size // 2}))
    grid.append(RunSpec("optimizer", "optimizer", {"optimizer": "nesterov"}))
    arch = {"arch": alt_arch} | ({"batch_size": alt_batch_size} if alt_batch_size else {})
    grid.append(RunSpec("arch", "architecture", arch))
    grid.append(RunSpec("half-a", DIFFERENT_DATA, {"subset": "half_a"}))
    grid.append(RunSpec("half-b", DIFFERENT_DATA, {"subset": "half_b"}))
    if combined:
        grid.append(RunSpec("combined", "combined", {**arch, "optimizer": "nesterov", "init_seed": repeats + 1,
                                                     "order_seed": repeats + 1, "lr": round(lr * factors[0], 6)}))
    grid += [RunSpec(f"nondet-{i}", "cuda non-determinism", {"deterministic": False, "benchmark": True,
                                                              "replica": i})
             for i in range(1, nondeterministic + 1)]
    check_grid(grid)
    return grid


def check_grid(grid: Sequence[RunSpec]) -> None:
    """Refuse a grid with two identical runs (same changes and length) or two runs of one name.

    An identical run adds nothing but inflates "trivial" and "impossible" (the paper's own set of models
    contained duplicates). Runs meant to differ only by non-determinism carry a ``replica`` number.

    Raises:
        ValueError: naming the runs.
    """
    seen: dict[str, str] = {}
    names: set[str] = set()
    for spec in grid:
        if spec.name in names:
            raise ValueError(f"The grid names two runs {spec.name!r}; run names must be unique.")
        names.add(spec.name)
        key = json.dumps({"changes": spec.changes, "extra_epochs": spec.extra_epochs}, sort_keys=True, default=str)
        if key in seen:
            raise ValueError(f"Runs {seen[key]!r} and {spec.name!r} of the grid are identical ({spec.changes}); "
                             "every run must differ (give non-determinism replicas a 'replica' number).")
        seen[key] = spec.name


def conditions_of(grid: Sequence[RunSpec]) -> dict[str, str]:
    """Run name -> condition, for ``lightning-ddd report --conditions``."""
    return {r.name: r.condition for r in grid}


class GridRunner:
    """Run a grid locally, one run after another; skip finished runs; resume interrupted ones.

    Args:
        out: experiment folder: stores in ``out/stores``, checkpoints in ``out/checkpoints/<run>``,
            ``.done`` markers in ``out/done``.
        train: ``train(spec, ckpt_path, paths)`` trains one run (resuming from ``ckpt_path`` when given).
        progress: called with progress messages.
    """

    def __init__(self, out: str | os.PathLike, train: Callable[[RunSpec, str | None, dict[str, Path]], None],
                 progress: Callable[[str], None] = lambda msg: None) -> None:
        self.out = Path(out)
        self.train = train
        self.progress = progress

    def paths(self, spec: RunSpec) -> dict[str, Path]:
        """Where a run's store, checkpoints and marker live."""
        return {"stores": self.out / "stores", "checkpoints": self.out / "checkpoints" / spec.name,
                "done": self.out / "done" / f"{spec.name}.done"}

    def status(self, spec: RunSpec) -> str:
        """``"done"``, ``"interrupted"`` (a checkpoint exists) or ``"new"``."""
        p = self.paths(spec)
        if p["done"].exists():
            return "done"
        if (p["checkpoints"] / "last.ckpt").exists():
            return "interrupted"
        return "new"

    def run(self, grid: Sequence[RunSpec]) -> dict[str, str]:
        """Run every run that is not done. Returns what happened to each run."""
        outcome = {}
        for i, spec in enumerate(grid, 1):
            p = self.paths(spec)
            state = self.status(spec)
            if state == "done":
                self.progress(f"[{i}/{len(grid)}] {spec.name}: finished earlier, skipped")
                outcome[spec.name] = "skipped"
                continue
            ckpt = str(p["checkpoints"] / "last.ckpt") if state == "interrupted" else None
            self.progress(f"[{i}/{len(grid)}] {spec.name} ({spec.condition})" + (", resuming" if ckpt else ""))
            self.train(spec, ckpt, p)
            p["done"].parent.mkdir(parents=True, exist_ok=True)
            p["done"].write_text(json.dumps({"run": spec.name, "condition": spec.condition}))
            outcome[spec.name] = "resumed" if ckpt else "trained"
        return outcome


def write_slurm_array(grid: Sequence[RunSpec], path: str | os.PathLike, command: str, *, nodes: int = 1,
                      gpus_per_node: int = 4, cpus_per_task: int = 8, time: str = "72:00:00",
                      partition: str | None = None, extra: Sequence[str] = ()) -> Path:
    """Write a SLURM array script with one task per run of the grid.

    Each task runs ``command`` with ``RUN`` set to its run name; with several GPUs or nodes Lightning's DDP
    picks up SLURM's environment (``srun`` starts one process per GPU). Re-submitting the script is safe:
    the command skips finished runs and resumes interrupted ones.

    Args:
        grid: the runs.
        path: script file to write.
        command: shell command of one run, using ``$RUN`` (e.g. ``python recipes/run_grid.py cifar10 --run $RUN``).
        nodes: nodes per run.
        gpus_per_node: GPUs per node.
        cpus_per_task: CPUs per task.
        time: wall-clock limit per run (SLURM's ``--time``).
        partition: SLURM partition (None: the cluster's default).
        extra: further ``#SBATCH`` lines.
    """
    names = " ".join(shlex.quote(s.name) for s in grid)
    lines = ["#!/bin/bash", f"#SBATCH --array=0-{len(grid) - 1}", f"#SBATCH --nodes={nodes}",
             f"#SBATCH --ntasks-per-node={gpus_per_node}", f"#SBATCH --gres=gpu:{gpus_per_node}",
             f"#SBATCH --cpus-per-task={cpus_per_task}", f"#SBATCH --time={time}",
             "#SBATCH --signal=SIGUSR1@90", "#SBATCH --requeue"]
    if partition:
        lines.append(f"#SBATCH --partition={partition}")
    lines += [f"#SBATCH {e}" for e in extra]
    lines += ["set -euo pipefail", f"RUNS=({names})", "export RUN=${RUNS[$SLURM_ARRAY_TASK_ID]}",
              f"srun {command}", ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    path.chmod(0o755)
    return path
