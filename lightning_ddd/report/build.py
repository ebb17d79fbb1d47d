"""Build the report folder: ``index.html``, ``summary.json``, ``samples.csv`` and ``figures/``.

The folder is written under a temporary name beside the target and renamed only when complete, so a failed
run never leaves a half-written report that looks finished.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ddd.analysis import (
    adjust_pvalues,
    align_rows,
    bootstrap_kappa,
    check_same_dataset,
    check_tolerance,
    compare_to_binomial,
    condition_consistency,
    consistency_to_base,
    count_correct,
    error_consistency,
    label_error_shares,
    load_runs,
    load_trajectory,
    pair_counts,
    pairwise_consistency,
    runs_at_row,
    samples_for_width,
    significance_matrix,
    summarize_difficulty,
    summarize_dynamics,
    upto_row,
)
from lightning_ddd.analysis.loading import Trajectory
from lightning_ddd.analysis.planning import samples_for_power

MAX_SVG_BYTES = 2 * 1024 * 1024


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


def auto_conditions(names: Sequence[str]) -> dict[str, str]:
    """Condition of each run: its name without a trailing ``-<digits>`` or ``_<digits>``."""
    return {n: re.sub(r"[-_]\d+$", "", n) for n in names}


def _to_json(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return _to_json(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _pair_json(r: Any) -> dict[str, Any]:
    s = r.stats
    return {"runs": list(r.runs), "row": r.row, "subset": r.subset, "tolerance": r.tolerance,
            "n_samples": r.n_samples, "n_boot": r.n_boot,
            "confidence": r.confidence, "kappa": s.kappa, "ci_low": r.ci_low, "ci_high": r.ci_high,
            "std_error": r.std_error, "degenerate_share": r.degenerate_share, "observed": s.observed,
            "expected": s.expected,
            "kappa_min": s.kappa_min, "kappa_max": s.kappa_max}


def analyse(inputs: Sequence[str], opts: ReportOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run every analysis the report shows.

    Returns:
        ``(summary, arrays)``: the JSON-ready summary and the arrays the figures need.
    """
    opts.progress("loading stores")
    runs = load_runs(inputs, opts.split, fields=())
    names = [r.name for r in runs]
    base = opts.base or names[0]
    if base not in names:
        raise ValueError(f"Base run {base!r} is not among the runs {names}. Pass --base with one of them.")
    base_i = names.index(base)
    n = runs[0].ids.size
    keep = np.ones(n, bool)
    if opts.label_errors is not None and len(opts.label_errors) != n:
        raise ValueError(f"The label-error mask has {len(opts.label_errors)} entries; the runs have {n} samples.")
    if opts.label_errors is not None and opts.exclude_label_errors:
        keep = ~np.asarray(opts.label_errors, bool)
    summary: dict[str, Any] = {"split": opts.split, "runs": names, "n_runs": len(runs), "n_samples": int(n),
                               "base": base, "tolerance": opts.tolerance, "notes": [],
                               "label_errors_excluded": int((~keep).sum())}
    arrays: dict[str, Any] = {"base_i": base_i, "keep": keep}

    from lightning_ddd.store.pending import pending_dir, pending_files

    for t in runs:
        pending = len(pending_files(t.path))
        if pending:
            msg = (f"Run {t.name!r}: {pending} row(s) pending in {pending_dir(t.path)} are not in this report; run "
                   f"`lightning-ddd repair {t.path}` to merge them.")
            summary["notes"].append(msg)
            opts.progress(msg)
    m = runs_at_row(runs, row=opts.row, epoch=opts.epoch)
    if opts.row is not None:
        how = f"row {opts.row} of each run (--row)"
    elif opts.epoch is not None:
        how = f"epoch {opts.epoch:g} ({opts.epoch_source})"
    else:
        how = "the latest epoch every run recorded"
    same_epoch = bool(np.allclose(m.epochs, m.epochs[0]))
    from lightning_ddd.store import RowFlag

    evaluated_once = [bool(int(t.flags[int(p)]) & RowFlag.EVALUATION) for t, p in zip(runs, m.rows)]
    summary["run_kinds"] = {t.name: "evaluated model" if e else "training run" for t, e in zip(runs, evaluated_once)}
    summary["kind"] = ("models" if all(evaluated_once) else "training runs" if not any(evaluated_once)
                       else "training runs and evaluated models")
    if all(evaluated_once):  # pretrained or saved models, each evaluated once: no epochs, no dynamics
        how = "a single evaluation of each model (weights not trained by this Trainer)"
        m = dataclasses.replace(m, row="a single evaluation of each model")
    elif any(evaluated_once):
        how += "; evaluated models at their single evaluation"
    summary["row"] = m.row
    summary["comparison"] = {
        "epoch": float(m.epochs[0]) if same_epoch and not all(evaluated_once) else None,
        "epochs": {n: float(e) for n, e in zip(names, m.epochs)},
        "how": how, "per_run_rows": "all recorded rows" if opts.all_rows else "rows up to the comparison epoch"}
    opts.progress(f"comparing {len(runs)} runs at {m.row} ({how}); per-run outputs use "
                  f"{summary['comparison']['per_run_rows']}")
    arrays["matrix"] = m
    summary["coverage"] = {"n_samples": int(n), "evaluated_per_row": {
        t.name: [int(c) for c in t.evaluated.sum(axis=1)] for t in runs},
        "evaluated_at_comparison": {name: int(e.sum()) for name, e in zip(names, m.evaluated)}}
    for t in runs:
        counts = t.evaluated.sum(axis=1)
        if (counts < n).any():
            msg = (f"Run {t.name!r}: {int((counts < n).sum())} of {len(counts)} rows cover only part of the {n} "
                   f"samples (as few as {int(counts.min())}; e.g. Trainer(limit_val_batches=...)); samples a row "
                   "did not evaluate are 'not evaluated' there, counted neither right nor wrong.")
            summary["notes"].append(msg)
            opts.progress(msg)
    full_runs = runs
    if not opts.all_rows:
        runs = [upto_row(t, int(p)) for t, p in zip(runs, m.rows)]
    arrays["runs"] = runs
    arrays["cut_rows"] = None if opts.all_rows else [int(p) for p in m.rows]

    opts.progress(f"per-run dynamics of {len(runs)} runs")
    per_run = {}
    for t in runs:
        d = summarize_dynamics(t.correct, t.evaluated, pred=t.pred, burn_in=t.burn_in)
        per_run[t.name] = {"epochs": t.epochs, "accuracy": d.rows.accuracy, "category_fractions":
                           d.category_fractions(), "mean_forgetting_events": float(d.forgetting_events.mean()),
                           "learned": d.rows.learned, "forgotten": d.rows.forgotten,
                           "kappa_prev": d.rows.kappa_prev, "pred_changes": d.rows.pred_changes}
    summary["per_run"] = per_run
    if len(runs) < 2:
        summary["notes"].append("Only one run: cross-run figures (k histogram, kappa heat maps, kappa to the base run) "
                                "need at least two runs.")
        return _finish(summary, arrays, opts, runs, base_i, full_runs)

    ref_correct, ref_eval, ref_names = m.correct, m.evaluated, m.runs
    if opts.reference:
        ref_runs = load_runs(opts.reference, opts.split, fields=())
        check_same_dataset([runs[0], *ref_runs])
        rm = runs_at_row(ref_runs, row=opts.row, epoch=opts.epoch if opts.row is not None or opts.epoch is not None
                         else (float(m.epochs[0]) if same_epoch else None))
        ref_correct, ref_eval, ref_names = rm.correct, rm.evaluated, rm.runs
    k = count_correct(ref_correct, ref_eval)
    k = np.where(keep, k, -1)
    n_ref = ref_correct.shape[0]
    summary["k"] = {"reference_runs": list(ref_names), "n_reference_runs": n_ref}
    cmp = compare_to_binomial(k, n_ref)
    summary["binomial"] = {"observed": cmp.observed, "binomial": cmp.binomial, "pure_ddd": cmp.pure_ddd,
                           "mean_accuracy": cmp.mean_accuracy, "total_variation": cmp.total_variation,
                           "excess_extremes": cmp.excess_extremes}
    arrays["k"] = k
    arrays["binomial"] = cmp

    opts.progress(f"error consistency of {len(runs) * (len(runs) - 1) // 2} pairs, {opts.n_boot} bootstrap resamples")
    cons_all = pairwise_consistency(m.correct, evaluated=m.evaluated, samples=keep, runs=names, n_boot=opts.n_boot,
                                    seed=opts.seed, subset="all", row=m.row)
    summary["consistency"] = {"all": _pair_json(cons_all)}
    arrays["cons_all"] = cons_all
    difficulty = None
    try:
        check_tolerance(n_ref, opts.tolerance)
        difficulty = summarize_difficulty(k, n_ref, tolerance=opts.tolerance, runs=ref_names, row=m.row)
    except ValueError as err:
        if opts.tolerance > 0:
            raise  # the user asked for a tolerance the runs cannot support
        summary["notes"].append(f"No trivial / impossible split: {err}")
    if difficulty is not None:
        summary["difficulty"] = {"counts": difficulty.counts, "fractions": difficulty.fractions,
                                 "mean_accuracy": difficulty.mean_accuracy, "tolerance": opts.tolerance,
                                 "runs": list(ref_names), "row": m.row}
        arrays["difficulty"] = difficulty
        mid = difficulty.in_between & keep
        if mid.sum() >= 2:
            opts.progress("error consistency on in-between samples")
            cons_mid = pairwise_consistency(m.correct, evaluated=m.evaluated, samples=mid, runs=names,
                                            n_boot=opts.n_boot, seed=opts.seed, subset="in-between", row=m.row,
                                            tolerance=opts.tolerance)
            summary["consistency"]["in_between"] = _pair_json(cons_mid)
            arrays["cons_mid"] = cons_mid
        else:
            summary["notes"].append("Fewer than two in-between samples: no in-between consistency.")
        if opts.label_errors is not None:
            le = label_error_shares(difficulty.labels, opts.label_errors)
            summary["label_errors"] = dataclasses.asdict(le)

    _significance(summary, arrays, m, keep, names, opts)
    conditions = opts.conditions
    if conditions == "auto":
        conditions = auto_conditions(names)
    if isinstance(conditions, dict):
        missing = [n for n in names if n not in conditions]
        if missing:
            raise ValueError(f"No condition given for runs {missing}; name every run in the conditions file.")
        labels = [conditions[n] for n in names]
        summary["conditions"] = {}
        for key, res in (("all", cons_all), ("in_between", arrays.get("cons_mid"))):
            if res is not None:
                cc = condition_consistency(res.kappa, labels)
                summary["conditions"][key] = dataclasses.asdict(cc)
        arrays["conditions"] = labels
        _condition_differences(summary, m, keep, arrays, labels, base_i, opts)
    return _finish(summary, arrays, opts, runs, base_i, full_runs)


def _significance(summary: dict[str, Any], arrays: dict[str, Any], m: Any, keep: np.ndarray, names: list[str],
                  opts: ReportOptions) -> None:
    """Both tests against independence (corrected), the less biased kappa and the copy probability, for all and
    for in-between samples; a note when the in-between subset is too small to exclude 0."""
    subsets = {"all": keep}
    if "difficulty" in arrays:
        subsets["in_between"] = arrays["difficulty"].in_between & keep
    summary["significance"] = {}
    for key, samples in subsets.items():
        if samples.sum() < 2:
            continue
        opts.progress(f"significance against independence ({key.replace('_', '-')}, {opts.null_draws} null draws)")
        s = significance_matrix(m.correct, evaluated=m.evaluated, samples=samples, runs=names,
                                n_draws=max(1, opts.null_draws), seed=opts.seed, method=opts.p_adjust, subset=key)
        entry = {"method": s.method, "n_draws": opts.null_draws, "p_exact": s.p_exact, "p_exact_adj": s.p_exact_adj,
                 "debiased_kappa": s.debiased, "copy_probability": s.copy, "n": s.n,
                 "chance": (s.p_exact_adj >= 0.05) & ~np.eye(len(names), dtype=bool)}
        if opts.null_draws > 0:
            entry.update(p_klein=s.p_klein, p_klein_adj=s.p_klein_adj, p_klein_floor=s.p_floor)
            if s.null_degenerate_share is not None:
                entry["null_degenerate_share"] = s.null_degenerate_share
            entry["chance"] = entry["chance"] | ((s.p_klein_adj >= 0.05) & ~np.eye(len(names), dtype=bool))
        summary["significance"][key] = entry
        arrays[f"chance_{key}"] = entry["chance"]
    mid = summary["significance"].get("in_between")
    if mid is not None:
        short = []
        n11, na, nb, n = pair_counts(m.correct, m.evaluated, subsets["in_between"])
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                k = float(mid["debiased_kappa"][i, j]) if np.isfinite(mid["debiased_kappa"][i, j]) else 0.0
                if n[i, j] < 2 or not np.isfinite(k) or abs(k) < 1e-6:
                    continue
                a1, a2 = na[i, j] / n[i, j], nb[i, j] / n[i, j]
                try:
                    needed = samples_for_width(a1, a2, float(np.clip(k, -0.99, 0.99)), 2 * abs(k))
                except ValueError:
                    continue
                if needed > n[i, j]:
                    short.append((needed, a1, a2, float(np.clip(k, -0.99, 0.99))))
        if short:
            _, a1, a2, k = max(short)  # the pair that needs the most samples
            try:
                plan = samples_for_power(a1, a2, k, power=0.8, n_sim=500, n_boot=200, seed=opts.seed)
                need = f"the hardest of them would need about {plan.n} samples for an 80 % chance to exclude 0"
            except ValueError:
                need = "no feasible number of samples would let the hardest of them exclude 0"
            summary["notes"].append(
                f"The in-between subset ({int(subsets['in_between'].sum())} samples) is too small for the 95 % "
                f"intervals of {len(short)} pair(s) to exclude 0 at their observed kappa ({need}, simulated; "
                "`lightning-ddd plan` computes this for given accuracies and kappa).")


def _condition_differences(summary: dict[str, Any], m: Any, keep: np.ndarray, arrays: dict[str, Any],
                           labels: list[str], base_i: int, opts: ReportOptions) -> None:
    """Is a condition's consistency with the base run different from another's? A paired bootstrap over
    samples of the difference of their mean kappas with the base (runs of the base's own condition excluded)."""
    base_label = labels[base_i]
    conds = [c for c in dict.fromkeys(labels) if c != base_label]
    if len(conds) < 2 or opts.n_boot < 1:
        return
    subsets = {"all": keep}
    if "difficulty" in arrays:
        subsets["in_between"] = arrays["difficulty"].in_between & keep
    out: dict[str, Any] = {}
    for key, samples in subsets.items():
        if samples.sum() < 2:
            continue
        boot = bootstrap_kappa(m.correct[:, samples], evaluated=m.evaluated[:, samples], n_boot=opts.n_boot,
                               seed=opts.seed + 1)[:, base_i, :]  # (B, M): every run's kappa with the base
        full = pairwise_consistency(m.correct, evaluated=m.evaluated, samples=samples, n_boot=0).kappa[base_i]
        idx = {c: [i for i, lab in enumerate(labels) if lab == c and i != base_i] for c in conds}
        rows = []
        for x in range(len(conds)):
            for y in range(x + 1, len(conds)):
                a, b = conds[x], conds[y]
                d_boot = np.nanmean(boot[:, idx[a]], axis=1) - np.nanmean(boot[:, idx[b]], axis=1)
                d = float(np.nanmean(full[idx[a]]) - np.nanmean(full[idx[b]]))
                lo, hi = np.nanquantile(d_boot, [0.025, 0.975])
                p = float(min(1.0, 2 * min(np.mean(d_boot <= 0), np.mean(d_boot >= 0))))
                rows.append({"a": a, "b": b, "difference": d, "ci_low": float(lo), "ci_high": float(hi),
                             "p": p})
        p_adj = adjust_pvalues(np.array([r["p"] for r in rows]), opts.p_adjust)
        for r, pa in zip(rows, p_adj):
            r["p_adj"] = float(pa)
        out[key] = rows
    summary["condition_differences"] = {"base": base_label, "method": opts.p_adjust, "n_boot": opts.n_boot,
                                        "pairs": out}


def _plus_epochs(base_full: Trajectory, at: int, samples: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """"+n epochs" (paper §3): kappa(base at E + n, base at E) for every later row n the base recorded."""
    out = []
    e0 = float(base_full.epochs[at])
    for r in range(at + 1, len(base_full.epochs)):
        entry: dict[str, Any] = {"n": float(base_full.epochs[r] - e0), "epoch": float(base_full.epochs[r])}
        for key, keep in samples.items():
            valid = keep & base_full.evaluated[r] & base_full.evaluated[at]
            st = error_consistency(base_full.correct[r], base_full.correct[at], valid=valid)
            entry[f"kappa_{key}"] = float(st.kappa)
            entry[f"n_{key}"] = int(valid.sum())
        out.append(entry)
    return out


def _different_data(summary: dict[str, Any], arrays: dict[str, Any], labels: list[str]) -> None:
    """The paper's "different data": the two disjoint half-data runs compared with each other."""
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(labels):
        if re.sub(r"[^a-z]", "", c.lower()) in ("halfdata", "half", "halfdataset", "differentdata"):
            groups.setdefault(c, []).append(i)
    for cond, idx in groups.items():
        if len(idx) != 2:
            continue
        i, j = idx
        entry: dict[str, Any] = {"condition": cond, "runs": [summary["runs"][i], summary["runs"][j]]}
        for key, res in (("all", arrays.get("cons_all")), ("in_between", arrays.get("cons_mid"))):
            if res is not None:
                entry[f"kappa_{key}"] = float(res.kappa[i, j])
                entry[f"ci_{key}"] = [float(res.ci_low[i, j]), float(res.ci_high[i, j])]
        summary["different_data"] = entry
        return


def _finish(summary: dict[str, Any], arrays: dict[str, Any], opts: ReportOptions, runs: list[Trajectory],
            base_i: int, full_runs: list[Trajectory]) -> tuple[dict[str, Any], dict[str, Any]]:
    m = arrays["matrix"]
    if len(runs) >= 2:
        epochs, correct, evaluated = align_rows(runs)
        if len(epochs):
            kb = consistency_to_base(correct, base=base_i, evaluated_rows=evaluated)
            same = arrays.get("cons_all")
            if same is None or not np.allclose(m.epochs, epochs[-1]) or summary["label_errors_excluded"]:
                same = None  # the main comparison is at other rows or on other samples: bootstrap again
            last = same or pairwise_consistency(correct[:, -1], evaluated=evaluated[:, -1], runs=summary["runs"],
                                                n_boot=opts.n_boot, seed=opts.seed, row=f"epoch {epochs[-1]:g}")
            summary["to_base"] = {"epochs": epochs, "kappa": kb, "ci_low_last": last.ci_low[base_i],
                                  "ci_high_last": last.ci_high[base_i]}
            arrays["to_base"] = (epochs, kb, (last.ci_low[base_i], last.ci_high[base_i]))
        keep = arrays.get("keep", np.ones(m.correct.shape[1], bool))
        samples = {"all": keep}
        if "difficulty" in arrays:
            samples["in_between"] = arrays["difficulty"].in_between & keep
        plus = _plus_epochs(full_runs[base_i], int(m.rows[base_i]), samples)
        if plus:
            summary["plus_epochs"] = plus
            arrays["plus_epochs"] = plus
        if "conditions" in arrays:
            _different_data(summary, arrays, arrays["conditions"])
    order = [base_i] + [i for i in range(len(runs)) if i != base_i]
    arrays["detail"] = [] if summary.get("kind") == "models" else order[: max(1, opts.per_run_limit)]
    return summary, arrays


def _training_dynamics(t: Trajectory, upto_epoch: float | None) -> tuple[str, Any] | None:
    """The run's training-split dynamics (data map, AUM), up to ``upto_epoch``, if it recorded one with
    probabilities."""
    from lightning_ddd.store import open_store

    store = open_store(t.path)
    for name, info in store.split_infos.items():
        if info.kind == "train" and "loss" in info.fields and info.num_rows:
            tr = load_trajectory(t.path, name, store=store)
            if upto_epoch is not None:
                keep = np.flatnonzero(tr.epochs <= upto_epoch + 1e-9)
                if not keep.size:
                    continue
                tr = upto_row(tr, int(keep[-1]))
            return name, summarize_dynamics(tr.correct, tr.evaluated, pred=tr.pred, prob=tr.prob, margin=tr.margin,
                                            burn_in=tr.burn_in)
    return None


def _save(fig: Any, folder: Path, name: str, figures: list[dict[str, str]], caption: str) -> None:
    import matplotlib.pyplot as plt

    png = folder / f"{name}.png"
    fig.savefig(png, dpi=110)
    entry = {"name": name, "png": f"figures/{png.name}", "caption": caption}
    svg = folder / f"{name}.svg"
    fig.savefig(svg)
    if svg.stat().st_size <= MAX_SVG_BYTES:
        entry["svg"] = f"figures/{svg.name}"
    else:
        svg.unlink()
    plt.close(fig)
    figures.append(entry)


def write_figures(summary: dict[str, Any], arrays: dict[str, Any], folder: Path, opts: ReportOptions
                  ) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Draw every figure into ``folder``; returns the figure list and the base run's per-sample table.

    User strings (run and condition names) are drawn literally: matplotlib's mathtext is off, so a ``$``
    in a run name is a dollar sign, not a formula.
    """
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        return _write_figures(summary, arrays, folder, opts)


def _write_figures(summary: dict[str, Any], arrays: dict[str, Any], folder: Path, opts: ReportOptions
                   ) -> tuple[list[dict[str, str]], dict[str, Any]]:
    from lightning_ddd.report import figures as F
    from lightning_ddd.report.table import per_sample_table

    folder.mkdir(parents=True, exist_ok=True)
    figs: list[dict[str, str]] = []
    runs: list[Trajectory] = arrays["runs"]
    table = None
    for pos, i in enumerate(arrays["detail"]):
        t = runs[i]
        opts.progress(f"figures of run {t.name!r}")
        full = load_trajectory(t.path, opts.split)
        if arrays.get("cut_rows") is not None:
            full = upto_row(full, arrays["cut_rows"][i])
        d = summarize_dynamics(full.correct, full.evaluated, pred=full.pred, prob=full.prob, margin=full.margin,
                               burn_in=full.burn_in)
        tag = f"run{pos:03d}-{re.sub(r'[^A-Za-z0-9_-]+', '-', t.name)[:60]}"  # unique per run, whatever the name
        score = d.rows_correct / np.maximum(d.rows_evaluated, 1)
        if "k" in arrays:
            score = score + arrays["k"] * 1000.0  # across runs first, then within the run
        order = np.argsort(-score, kind="stable")
        _save(F.plot_decision_raster(full.correct, full.evaluated, full.epochs, order,
                                     title=f"{t.name}: decisions per sample and epoch")[0],
              folder, f"raster_{tag}", figs, f"Decision raster of {t.name}, samples sorted by difficulty.")
        r = d.rows
        _save(F.plot_category_fractions(full.epochs, np.array(r.always_learned), np.array(r.never_learned),
                                        np.array(r.flip_flopping), title=f"{t.name}: categories so far")[0],
              folder, f"categories_{tag}", figs, f"Always learned, never learned and flip-flopping in {t.name}.")
        _save(F.plot_learned_forgotten(full.epochs, np.array(r.learned), np.array(r.forgotten),
                                       title=f"{t.name}: learned and forgotten per epoch")[0],
              folder, f"learned_forgotten_{tag}", figs, f"Samples learned and forgotten per epoch in {t.name}.")
        first_epoch = np.where(d.first_learned >= 0, full.epochs[np.clip(d.first_learned, 0, None)], np.nan)
        _save(F.plot_first_learned(first_epoch, title=f"{t.name}: when samples are first learned")[0],
              folder, f"first_learned_{tag}", figs, f"First-learned epoch histogram of {t.name}.")
        source = _training_dynamics(t, full.epochs[-1] if arrays.get("cut_rows") is not None else None)
        if source is not None:
            train_name, dm = source
            _save(F.plot_data_map(dm.confidence, dm.variability, dm.category,
                                  title=f"{t.name}: data map of training presentations ({train_name!r})")[0],
                  folder, f"data_map_{tag}", figs, f"Data map of {t.name} from its training presentations "
                  f"(split {train_name!r}, recorded with record_train=True), as Swayamdipta et al. define it.")
        elif full.prob is not None:
            _save(F.plot_data_map(d.confidence, d.variability, d.category,
                                  title=f"{t.name}: data map of validation rows (not training dynamics)")[0],
                  folder, f"data_map_{tag}", figs, f"Data map of {t.name} computed from its validation rows. Data "
                  "maps and AUM are defined on training presentations; record them with "
                  "DecisionRecorder(record_train=True) to draw this map from the training split.")
        if table is None:
            diff = arrays["difficulty"].labels if "difficulty" in arrays else None
            table = per_sample_table(full.ids, full.targets, d, full.epochs, arrays.get("k"), diff)
            arrays["base_dynamics"] = d
            arrays["base_pred"] = full.pred[-1] if full.pred is not None and len(full.pred) else None
    if "binomial" in arrays:
        cmp = arrays["binomial"]
        _save(F.plot_k_histogram(cmp.observed, cmp.binomial, len(cmp.observed) - 1, cmp.mean_accuracy)[0], folder,
              "k_histogram", figs, "Runs correct per sample against the binomial reference (Figure 2).")
    if "cons_all" in arrays:
        ca, cm = arrays["cons_all"], arrays.get("cons_mid")
        mid = cm.kappa if cm is not None else np.full_like(ca.kappa, np.nan)
        _save(F.plot_kappa_heatmaps(ca.kappa, mid, ca.runs, ci_all=(ca.ci_low, ca.ci_high),
                                    ci_mid=None if cm is None else (cm.ci_low, cm.ci_high),
                                    chance_all=arrays.get("chance_all"), chance_mid=arrays.get("chance_in_between"),
                                    title=f"Error consistency at {ca.row} (left: all samples; right: in-between)")[0],
              folder, "kappa_heatmaps", figs, "Kappa for every pair of runs, all samples and in-between only "
              "(Figure 5), one colour scale.")
    if "to_base" in arrays:
        epochs, kb, ci = arrays["to_base"]
        plus = arrays.get("plus_epochs")
        _save(F.plot_kappa_to_base(epochs, kb, summary["runs"], summary["base"], ci_last=ci, plus_epochs=plus)[0],
              folder, "kappa_to_base", figs, "Kappa with the base run per epoch (Figure 3), intervals at the "
              "comparison epoch" + ("; black stars: the base run with itself n epochs later (\"+n epochs\")."
                                    if plus else "."))
    return figs, table


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
    from lightning_ddd.report.html import render_html
    from lightning_ddd.report.table import write_table

    opts = opts or ReportOptions()
    out = Path(out)
    sources = [*inputs, *(opts.reference or [])]
    check_not_input(out, [*sources, *find_stores(sources)])
    check_folder_output(out, "report", force=force)
    summary, arrays = analyse(inputs, opts)
    with atomic_folder(out, "report") as tmp:
        figs, table = write_figures(summary, arrays, tmp / "figures", opts)
        if table is not None:
            from lightning_ddd.report.sections import write_samples_section

            write_samples_section(summary, arrays, table, tmp, opts, figs)
        summary["figures"] = figs
        if table is not None:
            write_table(table, tmp / "samples.csv")
            summary["samples_table"] = "samples.csv"
        clean = _to_json(summary)
        (tmp / "summary.json").write_text(json.dumps(clean, indent=1, allow_nan=False))
        (tmp / "index.html").write_text(render_html(clean))
    opts.progress(f"report written to {out}")
    return clean
