"""Build the report folder: ``index.html``, ``summary.json``, ``samples.csv`` and ``figures/``.

The folder is written under a temporary name beside the target and renamed only when complete, so a failed
run never leaves a half-written report that looks finished.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ddd.analysis.comparison import DIFFERENT_DATA, CompareOptions, Comparison, compare_runs
from lightning_ddd.report.summary import summarize, to_json


@dataclasses.dataclass
class ReportOptions:
    """What the report analyses.

    Attributes:
        split: split name.
        row: row position for cross-run comparisons (default: the comparison epoch below).
        epoch: epoch for cross-run comparisons; default the latest epoch every run recorded.
        tolerance: t for trivial / impossible (0 strict, 1 "all but one").
        base: base run name (default: the first run).
        conditions: run name -> condition; ``"auto"`` strips a trailing ``-<n>``/``_<n>``; None: one per run.
        label_errors: optional (N,) label-error mask.
        exclude_label_errors: drop label errors from every cross-run statistic.
        reference: stores whose k defines trivial / impossible (default: the runs themselves).
        n_boot: bootstrap resamples for intervals.
        per_run_limit: runs (the base first) that get per-run figures.
        seed: bootstrap seed.
        null_draws: null kappas per pair for Klein et al.'s test against independence (0: skip it).
        p_adjust: correction of the pairs' p-values, ``"holm"`` or ``"bh"``.
        all_rows: per-run outputs (categories, forgetting, first-learned, data maps, AUM, samples.csv) use
            every recorded row instead of the rows up to the comparison epoch.
        epoch_source: where ``epoch`` came from, for the page (``"--epoch"``, ``"conditions file"``).
        gallery_size: examples per gallery.
        images: an ImageFolder-style folder of the split's images, for stores without thumbnails.
        explorer: write the sample explorer (sprite sheets and trajectories beside the page).
        progress: called with progress messages.
        different_data: the condition whose two runs trained on disjoint data (the paper's "different data").
        aum_threshold: the AUM cut-off to draw (Pleiss et al.: the 99th percentile of threshold samples' AUM);
            default 0.
    """

    split: str = "val"
    row: int | None = None
    epoch: float | None = None
    tolerance: int = 0
    base: str | None = None
    conditions: dict[str, str] | str | None = None
    label_errors: np.ndarray | None = None
    exclude_label_errors: bool = False
    reference: Sequence[str] | None = None
    n_boot: int = 1000
    per_run_limit: int = 3
    seed: int = 0
    null_draws: int = 10_000
    p_adjust: str = "holm"
    all_rows: bool = False
    epoch_source: str = "--epoch"
    gallery_size: int = 24
    images: str | None = None
    explorer: bool = True
    progress: Callable[[str], None] = lambda msg: None
    different_data: str | None = DIFFERENT_DATA
    aum_threshold: float | None = None

    def comparison(self) -> CompareOptions:
        """The comparison these options ask for."""
        names = {f.name for f in dataclasses.fields(CompareOptions)}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in names}
        values["label_errors"] = self.label_errors  # not copied by asdict
        return CompareOptions(**values, detail=max(1, self.per_run_limit))


def _per_sample_source(c: Comparison) -> dict[str, Any]:
    """Which split the per-sample training-dynamics scores come from, in words for the page."""
    base = c.base_run.detail
    split = c.options.split
    if c.models_only:
        return {"split": split, "training_split": None, "note": "A single evaluation per model defines no training "
                "dynamics: samples.csv holds each model's correctness, k and difficulty."}
    if base is not None and base.training is not None:
        name = base.training.split
        return {"split": split, "training_split": name, "note": (
            f"Training dynamics as their papers define them (forgetting events, Toneva et al.; data maps, Swayamdipta "
            f"et al.; AUM, Pleiss et al.) come from the base run's training presentations (split {name!r}): "
            f"samples_train.csv, the data map and the AUM figure. samples.csv and the explorer describe the "
            f"{split!r} samples from their {split!r} rows (k, difficulty, categories; their forgetting, confidence "
            "and AUM columns are of those rows, not the training split's).")}
    return {"split": split, "training_split": None, "note": (
        f"The base run recorded no training split, so every per-sample score (samples.csv, the explorer, the data "
        f"map) comes from its {split!r} rows. Forgetting events, data maps and AUM are defined on training "
        "presentations; record them with DecisionRecorder(record_train=True).")}


def build_report(inputs: Sequence[str], out: str | os.PathLike, opts: ReportOptions | None = None, *,
                 force: bool = False) -> dict[str, Any]:
    """Analyse the stores and write the report folder atomically.

    Args:
        inputs: store files, directories or globs.
        out: the report folder. It may not overlap an input; an existing folder that ``report`` did not make
            is refused unless ``force``; a previous report is replaced only once the new one is complete.
        opts: what to analyse.
        force: replace an existing folder that ``report`` did not make.

    Returns:
        The summary written to ``summary.json``.

    Raises:
        OutputError: ``out`` overlaps an input, or exists and was not made by ``report`` (without ``force``).
    """
    from lightning_ddd.analysis.loading import find_stores
    from lightning_ddd.outputs import atomic_folder, check_folder_output, check_not_input
    from lightning_ddd.report.draw import write_figures
    from lightning_ddd.report.html import render_html
    from lightning_ddd.report.table import base_table, per_sample_table, write_table

    opts = opts or ReportOptions()
    out = Path(out)
    sources = [*inputs, *(opts.reference or [])]
    check_not_input(out, [*sources, *find_stores(sources)])
    check_folder_output(out, "report", force=force)
    comparison = compare_runs(inputs, opts.comparison())
    summary = summarize(comparison)
    with atomic_folder(out, "report") as tmp:
        figs = write_figures(comparison, summary, tmp / "figures", opts.progress, aum_threshold=opts.aum_threshold)
        base = comparison.base_run.detail
        if base is not None:
            from lightning_ddd.report.sections import write_samples_section

            table = base_table(comparison)
            summary.update(write_samples_section(comparison, table, tmp, opts, figs))
            write_table(table, tmp / "samples.csv")
            summary["samples_table"] = "samples.csv"
            summary["per_sample_source"] = _per_sample_source(comparison)
            if base.training is not None:
                tr = base.training
                write_table(per_sample_table(tr.trajectory.ids, tr.trajectory.targets, tr.dynamics,
                                             tr.trajectory.epochs), tmp / "samples_train.csv")
                summary["samples_train_table"] = "samples_train.csv"
        summary["figures"] = figs
        clean = to_json(summary)
        (tmp / "summary.json").write_text(json.dumps(clean, indent=1, allow_nan=False))
        (tmp / "index.html").write_text(render_html(clean))
    opts.progress(f"report written to {out}")
    return clean
