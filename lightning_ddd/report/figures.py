"""The paper's figures. Every function takes arrays, draws on ``ax`` (or a new figure), returns ``(fig, ax)``
and never shows or saves; only the report writes files. Dense artists are rasterised, and large inputs are
subsampled deterministically, with the subsampling stated in the title.

Figures are :class:`matplotlib.figure.Figure` objects made without pyplot, so importing this module never
switches the process's backend and a figure is freed when it is no longer referenced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from lightning_ddd.analysis.dynamics import Category
from lightning_ddd.report.summary_types import PlusEpochs

CATEGORY_COLORS = {Category.ALWAYS_LEARNED: "#2b8cbe", Category.NEVER_LEARNED: "#d7301f",
                   Category.FLIP_FLOPPING: "#fdae61", Category.OTHER: "#969696"}
MAX_RASTER_SAMPLES = 2000
MAX_SCATTER_POINTS = 20000


def _axes(ax, size=(6.4, 4.2)):  # noqa: ANN001, ANN202
    if ax is None:
        fig = Figure(figsize=size, layout="constrained")
        return fig, fig.subplots()
    return ax.figure, ax


def even_subsample(n: int, limit: int) -> np.ndarray:
    """Deterministic, evenly spaced positions (all when n <= limit)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def plot_decision_raster(correct: np.ndarray, evaluated: np.ndarray, epochs: np.ndarray, order: np.ndarray, *,
                         title: str = "Decisions per sample and epoch", ax: Any = None) -> tuple[Any, Any]:
    """Samples x rows raster (paper Figure 4): blue correct, red wrong, white missing; rows sorted by ``order``."""
    fig, ax = _axes(ax, (7.5, 4.8))
    pick = order[even_subsample(len(order), MAX_RASTER_SAMPLES)]
    img = np.where(evaluated[:, pick], correct[:, pick].astype(float), np.nan).T
    cmap = ListedColormap(["#d7301f", "#2b8cbe"])
    cmap.set_bad("white")
    im = ax.imshow(img, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=1, rasterized=True,
                   extent=(-0.5, len(epochs) - 0.5, len(pick), 0))
    ticks = even_subsample(len(epochs), 12)
    ax.set_xticks(ticks, [f"{epochs[t]:g}" for t in ticks])
    ax.set_xlabel("epoch (0 = before training)")
    ax.set_ylabel("samples, sorted by difficulty")
    shown = "" if len(pick) == len(order) else f" ({len(pick)} of {len(order)} samples, evenly spaced)"
    ax.set_title(title + shown, fontsize=10)
    cb = fig.colorbar(im, ax=ax, ticks=[0.25, 0.75])
    cb.ax.set_yticklabels(["wrong", "correct"])
    return fig, ax


def plot_category_fractions(epochs: np.ndarray, always: np.ndarray, never: np.ndarray, flip: np.ndarray, *,
                            title: str = "Categories so far", ax: Any = None) -> tuple[Any, Any]:
    """Fractions always learned / never learned / flip-flopping up to each row."""
    fig, ax = _axes(ax)
    for vals, cat, label in ((always, Category.ALWAYS_LEARNED, "always learned"),
                             (never, Category.NEVER_LEARNED, "never learned"),
                             (flip, Category.FLIP_FLOPPING, "flip-flopping")):
        ax.plot(epochs, vals, marker=".", color=CATEGORY_COLORS[cat], label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("fraction of samples")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend()
    return fig, ax


def plot_learned_forgotten(epochs: np.ndarray, learned: np.ndarray, forgotten: np.ndarray, *,
                           title: str = "Learned and forgotten per epoch", ax: Any = None) -> tuple[Any, Any]:
    """Samples learned (wrong -> correct) and forgotten (correct -> wrong) since the previous row."""
    fig, ax = _axes(ax)
    x = np.arange(len(epochs))[1:]
    width = 0.4
    ax.bar(x - width / 2, learned[1:], width, color="#2b8cbe", label="learned")
    ax.bar(x + width / 2, forgotten[1:], width, color="#d7301f", label="forgotten")
    ticks = even_subsample(len(x), 12)
    ax.set_xticks(x[ticks], [f"{epochs[1:][t]:g}" for t in ticks])
    ax.set_xlabel("epoch")
    ax.set_ylabel("samples")
    ax.set_title(title, fontsize=10)
    ax.legend()
    return fig, ax


def plot_k_histogram(observed: np.ndarray, binomial: np.ndarray, n_runs: int, mean_accuracy: float, *,
                     title: str | None = None, ax: Any = None) -> tuple[Any, Any]:
    """Histogram of k (runs correct per sample) against the analytic binomial reference (paper Figure 2)."""
    fig, ax = _axes(ax)
    k = np.arange(n_runs + 1)
    ax.bar(k, observed, color="#636363", label="observed")
    ax.plot(k, binomial, "o-", color="#e6550d", label=f"Binomial({n_runs}, {mean_accuracy:.3f})")
    ax.set_xlabel(f"k = runs correct (of {n_runs})")
    ax.set_ylabel("fraction of samples")
    ax.set_title(title or "Runs correct per sample vs. independent runs of equal difficulty", fontsize=10)
    ax.legend()
    return fig, ax


def plot_kappa_heatmaps(kappa_all: np.ndarray, kappa_mid: np.ndarray, names: Sequence[str], *,
                        ci_all: tuple[np.ndarray, np.ndarray] | None = None,
                        ci_mid: tuple[np.ndarray, np.ndarray] | None = None,
                        chance_all: np.ndarray | None = None, chance_mid: np.ndarray | None = None,
                        title: str = "Error consistency") -> tuple[Any, Any]:
    """Two kappa heat maps on one colour scale: all samples, and in-between samples only (paper Figure 5).

    ``chance_all`` / ``chance_mid``: (M, M) bool, pairs not distinguishable from independent observers; their
    cells are hatched.
    """
    m = len(names)
    side = min(4 + 0.25 * m, 8)  # fonts stay legible at any number of runs: ticks thin out instead
    fig = Figure(figsize=(2 * side + 1, side), layout="constrained")
    axes = fig.subplots(1, 2)
    vmin = float(np.nanmin([np.nanmin(kappa_all), np.nanmin(kappa_mid), 0.0]))
    im = None
    for ax, mat, ci, chance, label in ((axes[0], kappa_all, ci_all, chance_all, "all samples"),
                                       (axes[1], kappa_mid, ci_mid, chance_mid, "in-between samples only")):
        im = ax.imshow(mat, vmin=vmin, vmax=1, cmap="viridis", interpolation="nearest")
        if chance is not None and chance.any():
            from matplotlib.patches import Rectangle

            for i, j in zip(*np.nonzero(chance)):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="white",
                                       linewidth=0))
            label += " (hatched: not distinguishable from independence)"
        step = max(1, m // 20)
        ax.set_xticks(range(0, m, step), [names[i] for i in range(0, m, step)], rotation=90, fontsize=7)
        ax.set_yticks(range(0, m, step), [names[i] for i in range(0, m, step)], fontsize=7)
        if step > 1:
            label += f" (every {step}th run labelled)"
        ax.set_xlabel("run")
        ax.set_ylabel("run")
        ax.set_title(label, fontsize=10)
        if m <= 12:
            for i in range(m):
                for j in range(m):
                    text = f"{mat[i, j]:.2f}"
                    if ci is not None and m <= 6 and i != j:
                        text += f"\n[{ci[0][i, j]:.2f},{ci[1][i, j]:.2f}]"
                    shade = "black" if np.isfinite(mat[i, j]) and mat[i, j] > 0.5 * (1 + vmin) else "white"
                    ax.text(j, i, text, ha="center", va="center", fontsize=6, color=shade)
    assert im is not None
    fig.colorbar(im, ax=axes, label="Cohen's kappa")
    fig.suptitle(title, fontsize=11)
    return fig, axes


def plot_kappa_to_base(epochs: np.ndarray, kappa: np.ndarray, names: Sequence[str], base: str, *,
                       ci_last: tuple[np.ndarray, np.ndarray] | None = None,
                       plus_epochs: list[PlusEpochs] | None = None, ax: Any = None) -> tuple[Any, Any]:
    """Kappa of each run with the base run per epoch (paper Figure 3), intervals at the last epoch; with
    ``plus_epochs`` also the base with itself n epochs later, drawn at the comparison epoch + n.
    """
    fig, ax = _axes(ax, (7, 4.5))
    if plus_epochs:
        xs = [p["epoch"] for p in plus_epochs]
        ax.plot(xs, [p["kappa_all"] for p in plus_epochs], "k*-", ms=6, lw=0.8,
                label=f"{base} +n epochs vs epoch {epochs[-1]:g}")
        if "kappa_in_between" in plus_epochs[0]:
            ax.plot(xs, [p["kappa_in_between"] for p in plus_epochs], "k*:", ms=6, lw=0.8, mfc="white",
                    label=f"{base} +n epochs, in-between samples")
    colors = matplotlib.colormaps["tab20"](np.linspace(0, 1, max(len(names), 2)))
    for i, name in enumerate(names):
        if name == base:
            continue
        ax.plot(epochs, kappa[i], color=colors[i % len(colors)], lw=1, label=name if len(names) <= 24 else None)
        if ci_last is not None:
            ax.errorbar(epochs[-1], kappa[i, -1], yerr=[[kappa[i, -1] - ci_last[0][i]], [ci_last[1][i] - kappa[i, -1]]],
                        color=colors[i % len(colors)], capsize=2, fmt="none")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"kappa with base run {base!r}")
    ax.set_title("Error consistency with the base run per epoch", fontsize=10)
    if len(names) <= 24:
        ax.legend(fontsize=6, ncols=2, loc="lower right")
    else:
        ax.text(0.01, 0.01, f"{len(names) - 1} runs (legend omitted)", transform=ax.transAxes, fontsize=7)
    return fig, ax


def plot_data_map(confidence: np.ndarray, variability: np.ndarray, category: np.ndarray, *,
                  title: str = "Data map", ax: Any = None) -> tuple[Any, Any]:
    """Confidence against variability (Swayamdipta et al. 2020), coloured by category."""
    fig, ax = _axes(ax, (6, 5))
    ok = np.flatnonzero(np.isfinite(confidence) & np.isfinite(variability))
    pick = ok[even_subsample(len(ok), MAX_SCATTER_POINTS)]
    size = 12 if len(pick) < 2000 else 3
    for cat, color in CATEGORY_COLORS.items():
        sel = pick[category[pick] == cat]
        ax.scatter(variability[sel], confidence[sel], s=size, color=color, alpha=0.6, linewidths=0,
                   label=cat.text, rasterized=True)
    ax.set_xlabel("variability (std of true-class probability)")
    ax.set_ylabel("confidence (mean true-class probability)")
    shown = "" if len(pick) == len(ok) else f" ({len(pick)} of {len(ok)} samples)"
    ax.set_title(title + shown, fontsize=10)
    ax.legend(fontsize=7, markerscale=2)
    return fig, ax


def plot_aum(aum: np.ndarray, *, threshold: float | None = None, title: str = "Area under the margin",
             ax: Any = None) -> tuple[Any, Any]:
    """Histogram of AUM (Pleiss et al. 2020): the margin averaged over a sample's training presentations.

    ``threshold``: a cut-off to draw (Pleiss et al. take the 99th percentile of the AUM of threshold samples,
    a fake class; samples below it are flagged as likely mislabelled); without it, 0 is drawn.
    """
    fig, ax = _axes(ax)
    vals = aum[np.isfinite(aum)]
    ax.hist(vals, bins=min(60, max(10, int(np.sqrt(max(vals.size, 1))))), color="#4c72b0", alpha=0.85)
    cut = 0.0 if threshold is None else float(threshold)
    ax.axvline(cut, color="#c44e52", lw=1.2, label=f"{'threshold' if threshold is not None else 'zero'}: "
               f"{int((vals < cut).sum())} of {vals.size} samples below")
    ax.set_xlabel("AUM (mean margin over training presentations)")
    ax.set_ylabel("samples")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return fig, ax


def plot_first_learned(first_epoch: np.ndarray, *, title: str = "When samples are first learned",
                       ax: Any = None) -> tuple[Any, Any]:
    """Histogram of first-learned epochs; never-learned samples counted separately in the title."""
    fig, ax = _axes(ax)
    learned = first_epoch[np.isfinite(first_epoch)]
    never = int(np.sum(~np.isfinite(first_epoch)))
    bins = np.unique(learned).size
    ax.hist(learned, bins=max(1, min(bins, 50)), color="#2b8cbe", label="first correct")
    ax.set_xlabel("first-learned epoch")
    ax.set_ylabel("samples")
    ax.set_title(f"{title} ({never} never learned)", fontsize=10)
    ax.legend()
    return fig, ax


def plot_class_shares(impossible: tuple[Sequence[str], np.ndarray],
                      label_errors: tuple[Sequence[str], np.ndarray] | None = None, *,
                      title: str | None = None) -> tuple[Any, Any]:
    """Horizontal bars, largest at the top: the classes with the largest share of impossible samples and,
    in a second panel, those with the largest share of known label errors. Each is ``(labels, shares)``.
    """
    panels = [("impossible", impossible, "#d7301f")]
    if label_errors is not None:
        panels.append(("known label errors", label_errors, "#756bb1"))
    rows = max(len(p[1][0]) for p in panels)
    fig = Figure(figsize=(6.0 * len(panels), 0.28 * max(rows, 4) + 1.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (what, (labels, shares), color) in zip(axes[0], panels):
        y = np.arange(len(labels))[::-1]
        ax.barh(y, shares, color=color)
        ax.set_yticks(y, list(labels), fontsize=8)
        ax.set_xlabel(f"share of the class's samples that are {what}")
        ax.set_xlim(0, 1)
    fig.suptitle(title or ("Classes with the largest share of impossible samples"
                           + (" and of label errors" if label_errors is not None else "")), fontsize=10)
    return fig, axes
