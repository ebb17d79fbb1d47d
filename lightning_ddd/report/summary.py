"""``summary.json``: a :class:`~lightning_ddd.analysis.comparison.Comparison` as JSON, the one place that names
the report's keys.

:data:`SCHEMA` documents every top-level key; the tests hold every written summary to it. The page
(:mod:`lightning_ddd.report.html`) and the demo read this summary, never the comparison's internals.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lightning_ddd.analysis.comparison import Comparison
from lightning_ddd.analysis.consistency import ConsistencyResult
from lightning_ddd.report.summary_types import Summary

SCHEMA: dict[str, str] = {
    "split": "the compared split",
    "runs": "run (or model) names, in load order",
    "n_runs": "number of runs",
    "n_samples": "N, samples of the split",
    "base": "the base run",
    "tolerance": "t of trivial (k >= M - t) and impossible (k <= t)",
    "notes": "sentences the reader should know (pending rows, partial rows, subsets too small)",
    "label_errors_excluded": "samples left out of cross-run statistics as known label errors",
    "kind": "'models', 'training runs' or 'training runs and evaluated models'",
    "run_kinds": "run -> 'training run' or 'evaluated model'",
    "row": "the comparison row in words ('epoch 30', 'a single evaluation of each model')",
    "comparison": "{epoch (null for models or mixed epochs), epochs per run, how (chosen how), per_run_rows}",
    "coverage": "{n_samples, evaluated_per_row per run, evaluated_at_comparison per run}",
    "per_run": "run -> {epochs, accuracy, category_fractions, mean_forgetting_events, learned, forgotten, "
               "kappa_prev, pred_changes} per row up to the comparison epoch (absent for models)",
    "k": "{reference_runs, n_reference_runs, own}: the runs whose correct counts k define difficulty",
    "binomial": "{observed, binomial, pure_ddd, mean_accuracy, total_variation, excess_extremes}: the k histogram "
                "against independent runs of equal difficulty (Figure 2)",
    "difficulty": "{counts, fractions, mean_accuracy, tolerance, runs, row} at the chosen tolerance",
    "all_but_one": "the same at tolerance 1 (the paper's 'all but one'), when t = 0 and M >= 5",
    "consistency": "{all, in_between}: pairwise kappa, bootstrap intervals, observed / expected agreement, bounds",
    "significance": "{all, in_between}: p-values against independence (exact, Klein et al.), corrected; less biased "
                    "kappa; copy probability; chance mask",
    "label_errors": "shares of known label errors per difficulty class",
    "conditions": "{all, in_between}: mean kappa between conditions with standard errors",
    "condition_differences": "{base, method, n_boot, pairs}: paired-bootstrap differences of conditions' kappa "
                             "with the base condition",
    "to_base": "{epochs, kappa, ci_low_last, ci_high_last}: kappa with the base run per common epoch (Figure 3)",
    "plus_epochs": "[{n, epoch, kappa_all, n_all, kappa_in_between, n_in_between}]: the base run with itself later",
    "different_data": "{condition, runs, kappa_all, ci_all, kappa_in_between, ci_in_between}: the two runs on "
                      "disjoint data",
    "per_sample_source": "{split, training_split, note}: where the per-sample training-dynamics scores come from",
    "class_names": "whether the stores carry class names",
    "images": "{source, note}: where gallery images came from",
    "galleries": "{groups, seed, size, with_images}",
    "class_shares": "{impossible, label_errors}: classes with the largest shares",
    "explorer": "{samples, thumbnails, raster}: the sample explorer's files",
    "figures": "[{name, png, svg, caption}]",
    "samples_table": "the per-sample table's file name (the compared split's samples)",
    "samples_train_table": "the base run's training-split table (training dynamics as the peers define them)",
}


def to_json(x: Any) -> Any:
    """Plain JSON values: arrays as lists, non-finite floats as null."""
    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_json(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _pairs(r: ConsistencyResult) -> dict[str, object]:
    s = r.stats
    return {"runs": list(r.runs), "row": r.row, "subset": r.subset, "tolerance": r.tolerance,
            "n_samples": r.n_samples, "n_boot": r.n_boot,
            "confidence": r.confidence, "kappa": s.kappa, "ci_low": r.ci_low, "ci_high": r.ci_high,
            "std_error": r.std_error, "degenerate_share": r.degenerate_share, "observed": s.observed,
            "expected": s.expected, "kappa_min": s.kappa_min, "kappa_max": s.kappa_max}


def summarize(c: Comparison) -> Summary:
    """The comparison's part of ``summary.json``, as plain JSON values (the sample sections and figures are added
    by the report).
    """
    o = c.options
    s: dict[str, object] = {
        "split": o.split, "runs": list(c.names), "n_runs": len(c.names), "n_samples": c.n_samples, "base": c.base,
        "tolerance": o.tolerance, "notes": list(c.notes), "label_errors_excluded": int((~c.keep).sum()),
        "run_kinds": {r.name: r.kind for r in c.runs}, "kind": c.kind, "row": c.matrix.row,
        "comparison": {"epoch": c.comparison_epoch, "epochs": {r.name: r.epoch for r in c.runs}, "how": c.how,
                       "per_run_rows": "all recorded rows" if o.all_rows else "rows up to the comparison epoch"},
        "coverage": {"n_samples": c.n_samples,
                     "evaluated_per_row": {r.name: [int(v) for v in r.evaluated_per_row] for r in c.runs},
                     "evaluated_at_comparison": {r.name: r.evaluated_at_comparison for r in c.runs}},
        "per_run": {r.name: _run(r) for r in c.runs},
    }
    if c.reference is not None:
        s["k"] = {"reference_runs": list(c.reference.runs), "n_reference_runs": c.reference.n_runs,
                  "own": c.reference.own}
    if c.binomial is not None:
        b = c.binomial
        s["binomial"] = {"observed": b.observed, "binomial": b.binomial, "pure_ddd": b.pure_ddd,
                         "mean_accuracy": b.mean_accuracy, "total_variation": b.total_variation,
                         "excess_extremes": b.excess_extremes}
    for key, d in (("difficulty", c.difficulty), ("all_but_one", c.all_but_one)):
        if d is not None:
            s[key] = {"counts": d.counts, "fractions": d.fractions, "mean_accuracy": d.mean_accuracy,
                      "tolerance": d.tolerance, "runs": list(d.runs), "row": d.row}
    if c.consistency:
        s["consistency"] = {key: _pairs(r) for key, r in c.consistency.items()}
    if c.significance:
        s["significance"] = {key: _significance(v) for key, v in c.significance.items()}
    if c.label_errors is not None:
        s["label_errors"] = dataclasses.asdict(c.label_errors)
    _conditions(s, c)
    _over_time(s, c)
    return to_json(s)  # type: ignore[no-any-return]  # the JSON form of exactly these keys: Summary


def _run(r: Any) -> dict[str, object]:
    d = r.dynamics
    return {"epochs": r.trajectory.epochs, "accuracy": d.rows.accuracy, "category_fractions": d.category_fractions(),
            "mean_forgetting_events": float(d.forgetting_events.mean()), "learned": d.rows.learned,
            "forgotten": d.rows.forgotten, "kappa_prev": d.rows.kappa_prev, "pred_changes": d.rows.pred_changes}


def _significance(v: Any) -> dict[str, object]:
    s = v.result
    entry = {"method": s.method, "n_draws": s.n_draws if v.klein else 0, "p_exact": s.p_exact,
             "p_exact_adj": s.p_exact_adj, "debiased_kappa": s.debiased, "copy_probability": s.copy, "n": s.n,
             "chance": v.chance}
    if v.klein:
        entry.update(p_klein=s.p_klein, p_klein_adj=s.p_klein_adj, p_klein_floor=s.p_floor)
        if s.null_degenerate_share is not None:
            entry["null_degenerate_share"] = s.null_degenerate_share
    return entry


def _conditions(s: dict[str, object], c: Comparison) -> None:
    if c.conditions is None:
        return
    s["conditions"] = {key: dataclasses.asdict(cc) for key, cc in c.conditions.means.items()}
    if c.conditions.differences:
        s["condition_differences"] = {
            "base": c.conditions.base_condition, "method": c.options.p_adjust, "n_boot": c.options.n_boot,
            "pairs": {key: [dataclasses.asdict(d) for d in rows] for key, rows in c.conditions.differences.items()}}


def _over_time(s: dict[str, object], c: Comparison) -> None:
    if c.to_base is not None:
        t = c.to_base
        s["to_base"] = {"epochs": t.epochs, "kappa": t.kappa, "ci_low_last": t.ci_low_last,
                        "ci_high_last": t.ci_high_last}
    if c.plus_epochs:
        s["plus_epochs"] = [{"n": p.n, "epoch": p.epoch, **{f"kappa_{k}": v for k, v in p.kappa.items()},
                             **{f"n_{k}": v for k, v in p.samples.items()}} for p in c.plus_epochs]
    if c.different_data is not None:
        dd = c.different_data
        s["different_data"] = {"condition": dd.condition, "runs": list(dd.runs),
                               **{f"kappa_{k}": v for k, v in dd.kappa.items()},
                               **{f"ci_{k}": list(v) for k, v in dd.interval.items()}}
