"""The report's sample sections: galleries of example images, the classes with most impossible samples and
label errors, and the sample explorer's files. Everything shown is chosen by
:mod:`lightning_ddd.analysis.galleries`, the rules W&B's hard-samples table uses too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lightning_ddd.analysis import align_rows
from lightning_ddd.analysis.comparison import Comparison
from lightning_ddd.analysis.difficulty import Difficulty
from lightning_ddd.analysis.dynamics import Category
from lightning_ddd.analysis.galleries import (
    GALLERY_SEED,
    class_shares,
    difficulty_galleries,
    dynamics_galleries,
)
from lightning_ddd.images import ThumbnailSource, folder_thumbnails, store_thumbnails, stored_class_names
from lightning_ddd.report.samples import write_gallery_images, write_rasters, write_samples, write_sprites
from lightning_ddd.report.summary_types import Figure, Summary

GROUP_TITLES = {"trivial": "Trivial (every run correct)", "in_between": "In-between",
                "impossible": "Impossible (every run wrong)", "always_learned": "Always learned",
                "never_learned": "Never learned", "flip_flopping": "Flip-flopping"}
DIFFICULTY_CODES = tuple(Difficulty.keys())
CATEGORY_CODES = tuple(Category.keys())
TOP_CLASSES = 15


def _label(target: int, names: list[str] | None) -> str:
    if target < 0:
        return "not evaluated"  # a row that covered only part of the split (limit_val_batches)
    return names[target] if names is not None and target < len(names) else str(target)


def _source(c: Comparison, opts: Any) -> tuple[ThumbnailSource | None, dict[str, str | None]]:
    n = c.n_samples
    order = [c.base_index] + [i for i in range(len(c.runs)) if i != c.base_index]
    if opts.images:
        source: ThumbnailSource | None = folder_thumbnails(opts.images, n)
        note = ""
    else:
        runs = [c.runs[i].trajectory for i in order]
        source, note = store_thumbnails([(t.name, t.path) for t in runs], c.options.split, n)
    if note:
        opts.progress(note)
    return source, {"source": source.where if source is not None else None, "note": note}


def write_samples_section(c: Comparison, table: dict[str, np.ndarray], folder: Path, opts: Any,
                          figs: list[Figure]) -> Summary:
    """Galleries, the per-class figure and the explorer's files, into the report folder.

    Returns:
        Their description for ``summary.json`` (``class_names``, ``images``, ``galleries``, ``class_shares``,
        ``explorer``).
    """
    assert c.base_run.detail is not None
    names = stored_class_names([r.trajectory.path for r in c.runs], c.options.split)
    source, images_info = _source(c, opts)
    out: Summary = {"class_names": names is not None, "images": images_info}
    targets = np.asarray(table["target"], np.int64)
    base = c.base_run.detail
    pred = base.trajectory.pred[-1] if base.trajectory.pred is not None and len(base.trajectory.pred) else None
    out["galleries"] = _galleries(c, folder, source, names, targets, pred, opts)
    if c.difficulty is not None:
        out["class_shares"] = _class_shares(c, folder, names, targets, opts.label_errors, figs)
    if opts.explorer:
        opts.progress("sample explorer")
        out["explorer"] = _write_explorer(c, table, folder / "explorer", source, names, pred, opts.label_errors)
    return out


def _galleries(c: Comparison, folder: Path, source: ThumbnailSource | None, names: list[str] | None,
               targets: np.ndarray, pred: np.ndarray | None, opts: Any) -> dict[str, object]:
    """The gallery groups (across runs, and the base run's categories unless models), their images written."""
    assert c.base_run.detail is not None
    d = c.base_run.detail.dynamics
    k = c.reference.k if c.reference is not None else None
    m = c.reference.n_runs if c.reference is not None else None
    label_errors = opts.label_errors
    groups: list[tuple[str, Any]] = []
    if c.difficulty is not None:
        scope = "across models" if c.models_only else "across runs"
        groups += [(scope, sel) for sel in difficulty_galleries(c.difficulty, opts.gallery_size, keep=c.keep)]
    if not c.models_only:  # a single evaluation has no training dynamics
        groups += [(f"base run {c.base}", sel)
                   for sel in dynamics_galleries(d.category, d.forgetting_events, opts.gallery_size)]
    chosen = np.concatenate([sel.ids for _, sel in groups]) if groups else np.zeros(0, np.int64)
    images = write_gallery_images(folder / "galleries", source, chosen) if source is not None else {}
    never = d.category == Category.NEVER_LEARNED
    out = []
    for scope, sel in groups:
        samples = [{"id": int(i), "label": _label(int(targets[i]), names),
                    "pred": _label(int(pred[i]), names) if pred is not None else None,
                    "k": int(k[i]) if k is not None and k[i] >= 0 else None, "of": m,
                    "forgetting": "inf" if never[i] else int(d.forgetting_events[i]),
                    "label_error": bool(label_errors[i]) if label_errors is not None else None,
                    "image": images.get(int(i))} for i in sel.ids.tolist()]
        out.append({"name": sel.name, "title": GROUP_TITLES[sel.name], "scope": scope, "total": sel.total,
                    "rule": sel.rule, "samples": samples})
    return {"groups": out, "seed": GALLERY_SEED, "size": opts.gallery_size, "with_images": bool(images)}


def _class_shares(c: Comparison, folder: Path, names: list[str] | None, targets: np.ndarray,
                  label_errors: np.ndarray | None, figs: list[Figure]) -> dict[str, object]:
    """The classes with the largest shares of impossible samples (and of label errors), with their figure."""
    from lightning_ddd.report.draw import save_figure
    from lightning_ddd.report.figures import plot_class_shares

    assert c.difficulty is not None
    cs = class_shares(targets, c.difficulty.labels, label_errors, c.keep)
    top_imp = cs.top("impossible", TOP_CLASSES)
    label = [f"{_label(int(cl), names)} (n={int(n)})" for cl, n in zip(cs.classes, cs.samples)]
    entry: dict[str, object] = {"impossible": [{"class": _label(int(cs.classes[j]), names),
                                             "samples": int(cs.samples[j]), "share": float(cs.impossible[j])}
                                            for j in top_imp]}
    le = None
    if label_errors is not None:
        top_le = cs.top("label_errors", TOP_CLASSES)
        le = ([label[j] for j in top_le], cs.label_errors[top_le])
        entry["label_errors"] = [{"class": _label(int(cs.classes[j]), names), "samples": int(cs.samples[j]),
                                  "share": float(cs.label_errors[j])} for j in top_le]
    if len(cs.classes) > 1:
        fig, _ = plot_class_shares(([label[j] for j in top_imp], cs.impossible[top_imp]), le)
        save_figure(fig, folder / "figures", "class_shares", figs,
                    f"The {len(top_imp)} classes with the largest share of impossible samples"
                    + (" and of known label errors." if le is not None else "."))
    return entry


def _write_explorer(c: Comparison, table: dict[str, np.ndarray], folder: Path, source: ThumbnailSource | None,
                    names: list[str] | None, pred: np.ndarray | None,
                    label_errors: np.ndarray | None) -> dict[str, object]:
    runs = [r.trajectory for r in c.runs]
    n = c.n_samples
    assert c.base_run.detail is not None
    d = c.base_run.detail.dynamics
    diff = c.difficulty
    k = c.reference.k if c.reference is not None else None
    columns: dict[str, object] = {
        "id": table["id"], "target": table["target"],
        "pred": pred if pred is not None else np.full(n, -1),
        "difficulty": diff.labels if diff is not None else np.full(n, int(Difficulty.UNOBSERVED)),
        "category": np.full(n, int(Category.UNOBSERVED), np.int8) if c.models_only else d.category,
        "k": k if k is not None else np.full(n, -1),
        "forgetting": np.zeros(n, np.int64) if c.models_only else d.forgetting_events,
        "first_learned": table.get("first_learned_epoch", np.full(n, np.nan)),
        "confidence": table.get("confidence", np.full(n, np.nan)), "aum": table.get("aum", np.full(n, np.nan)),
        "label_error": label_errors.astype(np.int8) if label_errors is not None else np.zeros(n, np.int8),
        "thumb": source.mask.astype(np.int8) if source is not None else np.zeros(n, np.int8),
    }
    meta: dict[str, object] = {"classes": names, "difficulty": DIFFICULTY_CODES, "category": CATEGORY_CODES,
                            "of": c.reference.n_runs if c.reference is not None else None, "base": c.base,
                            "runs": list(c.names), "dynamics": not c.models_only}
    if source is not None:
        meta["sprites"] = write_sprites(folder, source, n)
    if len(runs) and all(t.correct.shape[1] == n for t in runs):
        epochs, correct, evaluated = align_rows(runs)
        if len(epochs):
            meta["raster"] = {**write_rasters(folder, correct, evaluated), "epochs": [float(e) for e in epochs]}
    write_samples(folder, columns, meta)
    return {"samples": n, "thumbnails": source is not None, "raster": "raster" in meta}
