"""``lightning-ddd demo``: the paper's controlled experiment at CPU scale on sklearn's bundled digits.

Small networks train on the digits (with a fixed Gaussian pixel corruption that keeps accuracy near the
paper's 70 %) under the §3 grid: base; different initialisation, data order and learning rate (several runs
each); batch size; optimizer; architecture; half data and the two disjoint halves; all factors combined;
and "+1" / "+10" epochs of the base run. Every run records the untrained network and every epoch with
``DecisionRecorder``; then the multi-run report is written.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from lightning_ddd.grid import GridRunner, RunSpec, conditions_of, paper_grid

if TYPE_CHECKING:
    from lightning_ddd.report.summary_types import DifferentData, Summary

DEMO_BASE: dict[str, Any] = {"arch": "mlp", "width": 16, "lr": 0.02, "optimizer": "sgd", "batch_size": 32,
                             "init_seed": 0, "order_seed": 0, "subset": "all", "epochs": 12, "milestones": [6, 9],
                             "pixel_noise": (0.0, 0.9)}


LEFT_OUT = ("the CUDA non-determinism condition (5 runs with the base's seeds, deterministic=False, "
            "cudnn.benchmark=True): on a CPU those runs are bit-identical to the base, so they would only duplicate "
            "it; the GPU recipes (recipes/run_grid.py) include it.")


def demo_grid(quick: bool = False) -> list[RunSpec]:
    """The demo's grid: 17 runs (9 with ``quick``)."""
    if quick:
        return paper_grid(repeats=1, lr=DEMO_BASE["lr"], batch_size=DEMO_BASE["batch_size"], alt_arch="cnn",
                          plus_epochs=2, combined=False)
    return paper_grid(repeats=3, lr=DEMO_BASE["lr"], batch_size=DEMO_BASE["batch_size"], alt_arch="cnn",
                      plus_epochs=10, combined=True)


def train_run(spec: RunSpec, ckpt_path: str | None, paths: dict[str, Path], *, base: dict[str, Any],
              seed: int, extra_callbacks: list[Any] | None = None) -> None:
    """Train one run of the demo grid on the CPU, recording every validation.

    Args:
        spec: the run.
        ckpt_path: checkpoint to resume from, or None.
        paths: the runner's paths of the run (``stores``, ``checkpoints``).
        base: the base configuration.
        seed: experiment seed.
        extra_callbacks: further callbacks for the Trainer.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_ddd.demo.digits import DigitsDataModule
    from lightning_ddd.demo.models import DigitsClassifier
    from lightning_ddd.recorder.lightning import DecisionRecorder

    cfg = spec.config(base)
    pl.seed_everything(seed)  # its info message is silenced by _quiet_lightning
    model = DigitsClassifier(arch=cfg["arch"], lr=cfg["lr"], optimizer=cfg["optimizer"], width=cfg["width"],
                             init_seed=cfg["init_seed"] + 1000 * seed, milestones=cfg["milestones"])
    data = DigitsDataModule(batch_size=cfg["batch_size"], order_seed=cfg["order_seed"] + 1000 * seed,
                            subset=cfg["subset"], pixel_noise=cfg["pixel_noise"])
    callbacks = [DecisionRecorder(paths["stores"], run_name=spec.name, overwrite=ckpt_path is None),
                 ModelCheckpoint(dirpath=paths["checkpoints"], save_last=True, save_top_k=1, every_n_epochs=1),
                 *(extra_callbacks or [])]
    trainer = pl.Trainer(max_epochs=cfg["epochs"] + spec.extra_epochs, callbacks=callbacks, logger=False,
                         num_sanity_val_steps=-1, enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", devices=1, deterministic=True, default_root_dir=str(paths["checkpoints"]))
    trainer.fit(model, data, ckpt_path=ckpt_path)


def _quiet_lightning() -> None:
    import lightning.pytorch  # noqa: F401 - configures its loggers on import; quiet them afterwards

    for name in ("lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module="lightning")


class KappaChange(TypedDict):
    """Kappa with the base run on all samples and on the in-between samples only."""

    kappa_all: float | None
    kappa_in_between: float | None


class DemoFindings(TypedDict, total=False):
    """What the demo found (:func:`summarize_demo`), and where its files are (:func:`run_demo`)."""

    n_runs: int
    epoch: int
    accuracy_mean: float
    accuracy_min: float
    accuracy_max: float
    strict: dict[str, float]
    all_but_one: dict[str, float]
    binomial_all_correct: float
    binomial_all_wrong: float
    observed_all_correct: float
    observed_all_wrong: float
    total_variation: float
    per_condition: dict[str, KappaChange]
    plus_epochs: dict[str, KappaChange]
    different_data: DifferentData
    left_out: str
    stores: str
    report: str
    seconds: float
    text: str


def summarize_demo(summary: Summary, epochs: int, plus: int) -> DemoFindings:
    """The demo's findings, read from the report's summary (``summary.json``): accuracy, trivial / in-between /
    impossible (strict and all but one), kappa by condition with the base, "+n epochs", "different data".
    """
    acc = [summary["per_run"][name]["accuracy"][-1] for name in summary["runs"]]
    cond_all, cond_mid = summary["conditions"]["all"], summary["conditions"]["in_between"]
    names = cond_all["conditions"]
    b = names.index("base")
    per_condition: dict[str, KappaChange] = {
        c: {"kappa_all": cond_all["mean"][b][i], "kappa_in_between": cond_mid["mean"][b][i]}
        for i, c in enumerate(names) if c != "base"}
    plus_n: dict[str, KappaChange] = {
        f"+{p['n']:g}": {"kappa_all": p["kappa_all"], "kappa_in_between": p["kappa_in_between"]}
        for p in summary.get("plus_epochs", []) if p["n"] in {1, plus}}
    dd = summary.get("different_data")
    different_data: DifferentData = (
        {"runs": dd["runs"], "kappa_all": dd["kappa_all"], "kappa_in_between": dd["kappa_in_between"]} if dd else {})
    b_ = summary["binomial"]
    return {"n_runs": summary["n_runs"], "epoch": epochs, "accuracy_mean": float(np.mean(acc)),
            "accuracy_min": float(np.min(acc)), "accuracy_max": float(np.max(acc)),
            "strict": summary["difficulty"]["fractions"], "all_but_one": summary["all_but_one"]["fractions"],
            "binomial_all_correct": b_["binomial"][-1], "binomial_all_wrong": b_["binomial"][0],
            "observed_all_correct": b_["observed"][-1], "observed_all_wrong": b_["observed"][0],
            "total_variation": b_["total_variation"], "per_condition": per_condition, "plus_epochs": plus_n,
            "different_data": different_data, "left_out": LEFT_OUT}


def describe(s: DemoFindings) -> str:
    """The demo's findings as text."""
    st, ab = s["strict"], s["all_but_one"]
    lines = [
        f"{s['n_runs']} runs compared at epoch {s['epoch']}: accuracy {100 * s['accuracy_mean']:.1f} % "
        f"(from {100 * s['accuracy_min']:.1f} to {100 * s['accuracy_max']:.1f} %).",
        f"strict rule:  trivial {100 * st['trivial']:.1f} %, in-between {100 * st['in_between']:.1f} %, "
        f"impossible {100 * st['impossible']:.1f} %",
        f"all but one:  trivial {100 * ab['trivial']:.1f} %, in-between {100 * ab['in_between']:.1f} %, "
        f"impossible {100 * ab['impossible']:.1f} %",
        f"independent runs of equal difficulty would give {100 * s['binomial_all_correct']:.1f} % all correct and "
        f"{100 * s['binomial_all_wrong']:.1f} % all wrong; observed {100 * s['observed_all_correct']:.1f} % and "
        f"{100 * s['observed_all_wrong']:.1f} % (total variation {s['total_variation']:.2f}).",
        "error consistency with the base run (kappa, all samples -> in-between only):",
    ]
    for c, v in s["per_condition"].items():
        lines.append(f"  {c:<14} {v['kappa_all']:.2f} -> {v['kappa_in_between']:.2f}")
    for n, v in s["plus_epochs"].items():
        lines.append(f"  {'base ' + n + ' epochs':<14} {v['kappa_all']:.2f} -> {v['kappa_in_between']:.2f}  "
                     "(the base run with itself)")
    if s.get("different_data"):
        dd = s["different_data"]
        lines.append(f"different data ({dd['runs'][0]} vs {dd['runs'][1]}, disjoint halves of the training set): "
                     f"{dd['kappa_all']:.2f} -> {dd['kappa_in_between']:.2f} (paper: 0.49 -> -0.12)")
    lines.append(f"left out on the CPU: {s['left_out']}")
    return "\n".join(lines)


def run_demo(out: str | Path = "ddd-demo", *, epochs: int | None = None, quick: bool = False, seed: int = 0,
             progress: Callable[[str], None] = lambda msg: None, report: bool = True) -> DemoFindings:
    """Train the grid, record every run, write the report and summarise the findings.

    Args:
        out: experiment folder (stores, checkpoints, report).
        epochs: comparison epoch (training epochs of every run but the base, which trains longer).
        quick: the reduced 9-run grid with 3 epochs (for tests).
        seed: experiment seed; the same seed gives the same stores.
        progress: called with progress messages.
        report: write the HTML report.

    Returns:
        The findings (see :func:`summarize_demo`), their text under ``"text"``, and the paths.
    """
    _quiet_lightning()
    out = Path(out)
    base = dict(DEMO_BASE)
    if quick:
        base.update(epochs=3, milestones=[2])
    if epochs is not None:
        base["epochs"] = epochs
        base["milestones"] = [m for m in base["milestones"] if m < epochs]
    grid = demo_grid(quick)
    start = time.time()
    runner = GridRunner(out, lambda spec, ckpt, paths: train_run(spec, ckpt, paths, base=base, seed=seed), progress)
    outcome = runner.run(grid)
    progress(f"trained {sum(v != 'skipped' for v in outcome.values())} runs in {time.time() - start:.0f} s")
    stores = out / "stores"
    plus = max(s.extra_epochs for s in grid)
    from lightning_ddd.analysis.comparison import compare_runs
    from lightning_ddd.report.build import ReportOptions, build_report
    from lightning_ddd.report.summary import summarize

    opts = ReportOptions(epoch=base["epochs"], tolerance=0, base="base", conditions=conditions_of(grid),
                         progress=progress)
    if report:
        summary = build_report([str(stores)], out / "report", opts)
    else:
        summary = summarize(compare_runs([str(stores)], opts.comparison()))  # already plain JSON
    result = summarize_demo(summary, base["epochs"], plus)
    result["stores"] = str(stores)
    if report:
        result["report"] = str(out / "report" / "index.html")
    result["seconds"] = time.time() - start
    result["text"] = describe(result) + (f"\nreport: {result['report']}" if report else "")
    return result
