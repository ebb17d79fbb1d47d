"""Build the report folder: ``index.html``, ``summary.json``, ``samples.csv`` and ``figures/``.

The folder is written under a temporary name beside the target and renamed only when complete, so a failed
run never leaves a half-written report that looks finished.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

from lightning_ddd.analysis.comparison import CompareOptions, Comparison, compare_runs
from lightning_ddd.report.summary import summarize, to_json
from lightning_ddd.report.summary_types import Summary


@dataclasses.dataclass(frozen=True)
class ReportOptions(CompareOptions):
    """What the report analyses and shows: every :class:`~lightning_ddd.analysis.comparison.CompareOptions`
    field (split, comparison row or epoch, tolerance, base, conditions, label errors, reference runs, bootstrap,
    significance, ...), and these.

    Attributes:
        per_run_limit: runs (the base first) that get per-run figures.
        gallery_size: examples per gallery.
        images: an ImageFolder-style folder of the split's images, for stores without thumbnails.
        explorer: write the sample explorer (sprite sheets and trajectories beside the page).
        aum_threshold: the AUM cut-off to draw (Pleiss et al.: the 99th percentile of threshold samples' AUM);
            default 0.
    """

    per_run_limit: int = 3
    gallery_size: int = 24
    images: str | None = None
    explorer: bool = True
    aum_threshold: float | None = None

    def comparison(self) -> CompareOptions:
        """The comparison these options ask for (per-sample detail for the first ``per_run_limit`` runs)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(CompareOptions)}
        return CompareOptions(**{**values, "detail": max(1, self.per_run_limit)})


def _per_sample_source(c: Comparison) -> dict[str, str | None]:
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
                 force: bool = False) -> Summary:
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
