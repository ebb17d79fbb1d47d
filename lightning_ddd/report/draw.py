"""The report's figures, drawn from a :class:`~lightning_ddd.analysis.comparison.Comparison` into ``figures/``.

User strings (run and condition names) are drawn literally: matplotlib's mathtext is off, so a ``$`` in a run
name is a dollar sign, not a formula.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ddd.analysis.comparison import Comparison, RunSummary
from lightning_ddd.report.summary_types import Figure, Summary

MAX_SVG_BYTES = 2 * 1024 * 1024
Figures = list[Figure]


def save_figure(fig: Any, folder: Path, name: str, figures: Figures, caption: str) -> None:
    """Write ``fig`` as PNG (and SVG up to :data:`MAX_SVG_BYTES`) and list it in ``figures``."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    fig.savefig(png, dpi=110)
    entry: Figure = {"name": name, "png": f"figures/{png.name}", "caption": caption}
    svg = folder / f"{name}.svg"
    fig.savefig(svg)
    if svg.stat().st_size <= MAX_SVG_BYTES:
        entry["svg"] = f"figures/{svg.name}"
    else:
        svg.unlink()
    figures.append(entry)


def write_figures(c: Comparison, summary: Summary, folder: Path,
                  progress: Callable[[str], None] = lambda msg: None, *, aum_threshold: float | None = None
                  ) -> Figures:
    """Draw every figure of the comparison into ``folder``; returns the figure list (the base run's first).

    ``aum_threshold``: the AUM cut-off drawn in the AUM figure (default 0).
    """
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        figs: Figures = []
        for pos, run in enumerate([] if c.models_only else c.detailed_runs()):
            progress(f"figures of run {run.name!r}")
            _run_figures(c, run, pos, folder, figs, aum_threshold)
        _cross_run_figures(c, summary, folder, figs)
        return figs


def _run_figures(c: Comparison, run: RunSummary, pos: int, folder: Path, figs: Figures,
                 aum_threshold: float | None) -> None:
    from lightning_ddd.report import figures as F

    assert run.detail is not None
    full, d = run.detail.trajectory, run.detail.dynamics
    name = run.name
    tag = f"run{pos:03d}-{re.sub(r'[^A-Za-z0-9_-]+', '-', name)[:60]}"  # unique per run, whatever the name
    score = d.rows_correct / np.maximum(d.rows_evaluated, 1)
    if c.reference is not None:
        score = score + c.reference.k * 1000.0  # across runs first, then within the run
    order = np.argsort(-score, kind="stable")
    save_figure(F.plot_decision_raster(full.correct, full.evaluated, full.epochs, order,
                                       title=f"{name}: decisions per sample and epoch")[0],
                folder, f"raster_{tag}", figs, f"Decision raster of {name}, samples sorted by difficulty.")
    r = d.rows
    save_figure(F.plot_category_fractions(full.epochs, np.array(r.always_learned), np.array(r.never_learned),
                                          np.array(r.flip_flopping), title=f"{name}: categories so far")[0],
                folder, f"categories_{tag}", figs, f"Always learned, never learned and flip-flopping in {name}.")
    save_figure(F.plot_learned_forgotten(full.epochs, np.array(r.learned), np.array(r.forgotten),
                                         title=f"{name}: learned and forgotten per epoch")[0],
                folder, f"learned_forgotten_{tag}", figs, f"Samples learned and forgotten per epoch in {name}.")
    first_epoch = np.where(d.first_learned >= 0, full.epochs[np.clip(d.first_learned, 0, None)], np.nan)
    save_figure(F.plot_first_learned(first_epoch, title=f"{name}: when samples are first learned")[0],
                folder, f"first_learned_{tag}", figs, f"First-learned epoch histogram of {name}.")
    training = run.detail.training
    if training is not None:
        dm = training.dynamics
        save_figure(F.plot_data_map(dm.confidence, dm.variability, dm.category,
                                    title=f"{name}: data map of training presentations ({training.split!r})")[0],
                    folder, f"data_map_{tag}", figs, f"Data map of {name} from its training presentations "
                    f"(split {training.split!r}, recorded with record_train=True), as Swayamdipta et al. define it.")
        if np.isfinite(dm.aum).any():
            save_figure(F.plot_aum(dm.aum, threshold=aum_threshold,
                                   title=f"{name}: area under the margin of training presentations")[0],
                        folder, f"aum_{tag}", figs, f"Area under the margin (Pleiss et al.) of every training sample "
                        f"of {name} (split {training.split!r}); low or negative AUM flags likely mislabelled samples.")
    elif full.prob is not None:
        save_figure(F.plot_data_map(d.confidence, d.variability, d.category,
                                    title=f"{name}: data map of validation rows (not training dynamics)")[0],
                    folder, f"data_map_{tag}", figs, f"Data map of {name} computed from its validation rows. Data "
                    "maps and AUM are defined on training presentations; record them with "
                    "DecisionRecorder(record_train=True) to draw this map from the training split.")


def _cross_run_figures(c: Comparison, summary: Summary, folder: Path, figs: Figures) -> None:
    from lightning_ddd.report import figures as F

    what = "models" if c.models_only else "runs"
    if c.binomial is not None:
        b = c.binomial
        save_figure(F.plot_k_histogram(b.observed, b.binomial, len(b.observed) - 1, b.mean_accuracy)[0], folder,
                    "k_histogram", figs, f"{what.capitalize()} correct per sample against the binomial reference "
                    "(Figure 2).")
    ca, cm = c.consistency.get("all"), c.consistency.get("in_between")
    if ca is not None:
        mid = cm.kappa if cm is not None else np.full_like(ca.kappa, np.nan)
        chance = {k: v.chance for k, v in c.significance.items()}
        save_figure(F.plot_kappa_heatmaps(ca.kappa, mid, ca.runs, ci_all=(ca.ci_low, ca.ci_high),
                                          ci_mid=None if cm is None else (cm.ci_low, cm.ci_high),
                                          chance_all=chance.get("all"), chance_mid=chance.get("in_between"),
                                          title=f"Error consistency at {ca.row} (left: all samples; right: "
                                                "in-between)")[0],
                    folder, "kappa_heatmaps", figs, f"Kappa for every pair of {what}, all samples and in-between "
                    "only (Figure 5), one colour scale.")
    if c.to_base is not None and not c.models_only:
        t = c.to_base
        plus = summary.get("plus_epochs")
        save_figure(F.plot_kappa_to_base(t.epochs, t.kappa, list(c.names), c.base,
                                         ci_last=(t.ci_low_last, t.ci_high_last), plus_epochs=plus)[0],
                    folder, "kappa_to_base", figs, "Kappa with the base run per epoch (Figure 3), intervals at the "
                    "comparison epoch" + ("; black stars: the base run with itself n epochs later (\"+n epochs\")."
                                          if plus else "."))
