"""The report's sample sections: galleries of example images, the classes with most impossible samples and
label errors, and the sample explorer's files. Everything shown is chosen by
:mod:`lightning_ddd.analysis.galleries`, the rules W&B's hard-samples table uses too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lightning_ddd.analysis import align_rows
from lightning_ddd.analysis.dynamics import Category
from lightning_ddd.analysis.galleries import (
    GALLERY_SEED,
    class_shares,
    difficulty_galleries,
    dynamics_galleries,
)
from lightning_ddd.report.samples import (
    ThumbnailSource,
    folder_thumbnails,
    store_thumbnails,
    stored_class_names,
    write_gallery_images,
    write_rasters,
    write_samples,
    write_sprites,
)

GROUP_TITLES = {"trivial": "Trivial (every run correct)", "in_between": "In-between",
                "impossible": "Impossible (every run wrong)", "always_learned": "Always learned",
                "never_learned": "Never learned", "flip_flopping": "Flip-flopping"}
DIFFICULTY_CODES = ("trivial", "in_between", "impossible", "unobserved")
CATEGORY_CODES = tuple(c.name.lower() for c in Category)
TOP_CLASSES = 15


def _label(target: int, names: list[str] | None) -> str:
    if target < 0:
        return "not evaluated"  # a row that covered only part of the split (limit_val_batches)
    return names[target] if names is not None and target < len(names) else str(target)


def _source(summary: dict[str, Any], arrays: dict[str, Any], opts: Any) -> ThumbnailSource | None:
    n = summary["n_samples"]
    runs = arrays["runs"]
    order = [arrays["base_i"]] + [i for i in range(len(runs)) if i != arrays["base_i"]]
    if opts.images:
        source: ThumbnailSource | None = folder_thumbnails(opts.images, n)
        note = ""
    else:
        source, note = store_thumbnails([(runs[i].name, runs[i].path) for i in order], summary["split"], n)
    summary["images"] = {"source": source.where if source is not None else None, "note": note}
    if note:
        opts.progress(note)
    return source


def write_samples_section(summary: dict[str, Any], arrays: dict[str, Any], table: dict[str, np.ndarray],
                          folder: Path, opts: Any, figs: list[dict[str, str]]) -> None:
    """Galleries, the per-class figure and the explorer's files, into the report folder; their description
    into ``summary`` (``images``, ``galleries``, ``class_shares``, ``explorer``)."""
    from lightning_ddd.report.build import _save
    from lightning_ddd.report.figures import plot_class_shares

    split = summary["split"]
    names = stored_class_names([t.path for t in arrays["runs"]], split)
    summary["class_names"] = names is not None
    source = _source(summary, arrays, opts)
    targets = np.asarray(table["target"], np.int64)
    keep = arrays.get("keep", np.ones(targets.size, bool))
    label_errors = opts.label_errors
    d = arrays["base_dynamics"]
    pred = arrays.get("base_pred")
    k = arrays.get("k")
    m = summary.get("k", {}).get("n_reference_runs")

    groups: list[tuple[str, Any]] = []
    diff = arrays.get("difficulty")
    if diff is not None:
        groups += [("across runs", sel) for sel in difficulty_galleries(diff, opts.gallery_size, keep=keep)]
    groups += [(f"base run {summary['base']}", sel)
               for sel in dynamics_galleries(d.category, d.forgetting_events, opts.gallery_size)]
    chosen = np.concatenate([sel.ids for _, sel in groups]) if groups else np.zeros(0, np.int64)
    images = write_gallery_images(folder / "galleries", source, chosen) if source is not None else {}
    never = d.category == Category.NEVER_LEARNED
    out = []
    for scope, sel in groups:
        samples = []
        for i in sel.ids.tolist():
            samples.append({
                "id": int(i), "label": _label(int(targets[i]), names),
                "pred": _label(int(pred[i]), names) if pred is not None else None,
                "k": int(k[i]) if k is not None and k[i] >= 0 else None, "of": m,
                "forgetting": "inf" if never[i] else int(d.forgetting_events[i]),
                "label_error": bool(label_errors[i]) if label_errors is not None else None,
                "image": images.get(int(i))})
        out.append({"name": sel.name, "title": GROUP_TITLES[sel.name], "scope": scope, "total": sel.total,
                    "rule": sel.rule, "samples": samples})
    summary["galleries"] = {"groups": out, "seed": GALLERY_SEED, "size": opts.gallery_size,
                            "with_images": bool(images)}

    if diff is not None:
        cs = class_shares(targets, diff.labels, label_errors, keep)
        top_imp = cs.top("impossible", TOP_CLASSES)
        label = [f"{_label(int(c), names)} (n={int(n)})" for c, n in zip(cs.classes, cs.samples)]
        entry: dict[str, Any] = {"impossible": [{"class": _label(int(cs.classes[j]), names),
                                                 "samples": int(cs.samples[j]), "share": float(cs.impossible[j])}
                                                for j in top_imp]}
        le = None
        if label_errors is not None:
            top_le = cs.top("label_errors", TOP_CLASSES)
            le = ([label[j] for j in top_le], cs.label_errors[top_le])
            entry["label_errors"] = [{"class": _label(int(cs.classes[j]), names), "samples": int(cs.samples[j]),
                                      "share": float(cs.label_errors[j])} for j in top_le]
        summary["class_shares"] = entry
        if len(cs.classes) > 1:
            fig, _ = plot_class_shares(([label[j] for j in top_imp], cs.impossible[top_imp]), le)
            _save(fig, folder / "figures", "class_shares", figs,
                  f"The {len(top_imp)} classes with the largest share of impossible samples"
                  + (" and of known label errors." if le is not None else "."))

    if opts.explorer:
        opts.progress("sample explorer")
        _write_explorer(summary, arrays, table, folder / "explorer", source, names, pred, k, m, label_errors)


def _write_explorer(summary: dict[str, Any], arrays: dict[str, Any], table: dict[str, np.ndarray], folder: Path,
                    source: ThumbnailSource | None, names: list[str] | None, pred: np.ndarray | None,
                    k: np.ndarray | None, m: int | None, label_errors: np.ndarray | None) -> None:
    runs = arrays["runs"]
    n = summary["n_samples"]
    d = arrays["base_dynamics"]
    diff = arrays.get("difficulty")
    columns: dict[str, Any] = {
        "id": table["id"], "target": table["target"],
        "pred": pred if pred is not None else np.full(n, -1),
        "difficulty": diff.labels if diff is not None else np.full(n, 3),
        "category": d.category, "k": k if k is not None else np.full(n, -1),
        "forgetting": d.forgetting_events, "first_learned": table["first_learned_epoch"],
        "confidence": table["confidence"], "aum": table["aum"],
        "label_error": label_errors.astype(np.int8) if label_errors is not None else np.zeros(n, np.int8),
        "thumb": source.mask.astype(np.int8) if source is not None else np.zeros(n, np.int8),
    }
    meta: dict[str, Any] = {"classes": names, "difficulty": DIFFICULTY_CODES, "category": CATEGORY_CODES,
                            "of": m, "base": summary["base"], "runs": summary["runs"]}
    if source is not None:
        meta["sprites"] = write_sprites(folder, source, n)
    if len(runs) and all(t.correct.shape[1] == n for t in runs):
        epochs, correct, evaluated = align_rows(runs)
        if len(epochs):
            meta["raster"] = {**write_rasters(folder, correct, evaluated), "epochs": [float(e) for e in epochs]}
    write_samples(folder, columns, meta)
    summary["explorer"] = {"samples": n, "thumbnails": source is not None, "raster": "raster" in meta}
