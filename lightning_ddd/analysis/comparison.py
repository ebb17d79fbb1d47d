"""One comparison of runs, computed once and typed: what the report, ``export``, the study and the demo read.

:func:`compare_runs` loads the runs, chooses the base run and the comparison row, counts k, splits samples
into trivial / in-between / impossible, measures error consistency and its significance, and, where the
runs allow, the paper's "+n epochs", "different data" and condition differences. The result is a tree of
frozen dataclasses; :mod:`lightning_ddd.report.summary` is the only place that turns it into JSON keys.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

import numpy as np

from lightning_ddd.analysis.comparison_parts import (
    ConditionDifference,
    Conditions,
    DifferentData,
    PlusEpoch,
    RunDetail,
    RunSummary,
    SignificanceResult,
    ToBase,
    TrainingDynamics,
    condition_differences,
    plus_epochs,
    short_in_between_note,
)
from lightning_ddd.analysis.comparison_runs import (
    KIND_EVALUATED,
    KIND_TRAINED,
    choose_rows,
    coverage_notes,
    pending_notes,
    run_summaries,
)
from lightning_ddd.analysis.consistency import (
    ConsistencyResult,
    condition_consistency,
    consistency_to_base,
    pairwise_consistency,
)
from lightning_ddd.analysis.difficulty import (
    BinomialComparison,
    DifficultyResult,
    LabelErrorShares,
    check_tolerance,
    compare_to_binomial,
    count_correct,
    label_error_shares,
    summarize_difficulty,
)
from lightning_ddd.analysis.loading import (
    RunMatrix,
    Trajectory,
    align_rows,
    check_same_dataset,
    load_runs,
    runs_at_row,
)
from lightning_ddd.analysis.significance import significance_matrix

DIFFERENT_DATA = "half data"
"""The condition whose two runs trained on disjoint halves of the data (the paper's "different data"); the
grid's name for it, and the default of :attr:`CompareOptions.different_data`."""


__all__ = [
    "DIFFERENT_DATA", "CompareOptions", "Comparison", "ConditionDifference", "Conditions", "DifferentData",
    "PlusEpoch", "Reference", "RunDetail", "RunSummary", "SignificanceResult", "ToBase", "TrainingDynamics",
    "auto_conditions", "compare_runs",
]


def auto_conditions(names: Sequence[str]) -> dict[str, str]:
    """Condition of each run: its name without a trailing ``-<digits>`` or ``_<digits>``."""
    return {n: re.sub(r"[-_]\d+$", "", n) for n in names}


def _say_nothing(msg: str) -> None:
    """The default progress callback."""


@dataclasses.dataclass(frozen=True)
class CompareOptions:
    """What a comparison computes.

    Attributes:
        split: split name.
        row: row position for cross-run comparisons (default: the comparison epoch below).
        epoch: epoch for cross-run comparisons; default the latest epoch every run recorded.
        tolerance: t for trivial / impossible (0 strict, 1 "all but one").
        base: base run name (default: the first run).
        conditions: run name -> condition; ``"auto"`` strips a trailing ``-<n>``/``_<n>``; None: one per run.
        different_data: the condition whose two runs trained on disjoint data (None: no such comparison).
        label_errors: optional (N,) label-error mask.
        exclude_label_errors: drop label errors from every cross-run statistic.
        reference: stores whose k defines trivial / impossible (default: the runs themselves).
        n_boot: bootstrap resamples for intervals (0: none).
        seed: bootstrap seed.
        null_draws: null kappas per pair for Klein et al.'s test against independence (0: skip it).
        p_adjust: correction of the pairs' p-values, ``"holm"`` or ``"bh"``.
        all_rows: per-run outputs use every recorded row instead of the rows up to the comparison epoch.
        epoch_source: where ``epoch`` came from, for the page (``"--epoch"``, ``"conditions file"``).
        detail: runs (the base first) whose per-sample fields (probabilities, margins, training split) are
            loaded and analysed.
        significance: compute the tests against independence (off for ``export``).
        progress: called with progress messages.
    """

    split: str = "val"
    row: int | None = None
    epoch: float | None = None
    tolerance: int = 0
    base: str | None = None
    conditions: dict[str, str] | str | None = None
    different_data: str | None = DIFFERENT_DATA
    label_errors: np.ndarray | None = None
    exclude_label_errors: bool = False
    reference: Sequence[str] | None = None
    n_boot: int = 1000
    seed: int = 0
    null_draws: int = 10_000
    p_adjust: str = "holm"
    all_rows: bool = False
    epoch_source: str = "--epoch"
    detail: int = 3
    significance: bool = True
    progress: Callable[[str], None] = _say_nothing


@dataclasses.dataclass(frozen=True)
class Reference:
    """The runs whose correctness counts define trivial and impossible.

    Attributes:
        runs: their names (the compared runs themselves unless ``--reference``).
        k: (N,) runs correct per sample; -1 for samples left out (label errors with ``exclude_label_errors``).
        own: True when the reference runs are the compared runs (the in-between selection is circular).
    """

    runs: tuple[str, ...]
    k: np.ndarray
    own: bool

    @property
    def n_runs(self) -> int:
        """M, the number of reference runs."""
        return len(self.runs)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Every cross-run result of one set of runs, computed once.

    Attributes:
        options: what was asked.
        names: run names, in load order; base: the base run's name; base_index: its position.
        n_samples: N.
        keep: (N,) samples in the cross-run statistics.
        matrix: each run's correctness at its comparison row.
        how: how the comparison row was chosen, in words.
        kind: ``"models"``, ``"training runs"`` or ``"training runs and evaluated models"``.
        runs: per-run results, in load order.
        notes: what the reader should know (pending rows, partial rows, subsets too small).
        reference: k and the runs that define it (None with one run).
        binomial: the k histogram against the binomial reference (None with one run).
        difficulty: trivial / in-between / impossible at ``options.tolerance`` (None when the runs are too few).
        all_but_one: the same at tolerance 1 when the chosen tolerance is 0 and the runs allow it (the paper
            reports both).
        consistency: pairwise error consistency, ``"all"`` and ``"in_between"`` samples.
        significance: tests against independence per subset.
        conditions: per-condition means and differences (None without conditions).
        to_base: kappa with the base run at every common epoch (None with one run or no common epoch).
        plus_epochs: the base run with itself n epochs later.
        different_data: the two runs on disjoint data with each other.
        label_errors: shares of label errors per difficulty class.
    """

    options: CompareOptions
    names: tuple[str, ...]
    base: str
    base_index: int
    n_samples: int
    keep: np.ndarray
    matrix: RunMatrix
    how: str
    kind: str
    runs: tuple[RunSummary, ...]
    notes: tuple[str, ...]
    reference: Reference | None = None
    binomial: BinomialComparison | None = None
    difficulty: DifficultyResult | None = None
    all_but_one: DifficultyResult | None = None
    consistency: dict[str, ConsistencyResult] = dataclasses.field(default_factory=dict)
    significance: dict[str, SignificanceResult] = dataclasses.field(default_factory=dict)
    conditions: Conditions | None = None
    to_base: ToBase | None = None
    plus_epochs: tuple[PlusEpoch, ...] = ()
    different_data: DifferentData | None = None
    label_errors: LabelErrorShares | None = None

    @property
    def base_run(self) -> RunSummary:
        """The base run's results."""
        return self.runs[self.base_index]

    @property
    def models_only(self) -> bool:
        """Every run is a single evaluation of given weights (no epochs, no training dynamics)."""
        return self.kind == "models"

    @property
    def comparison_epoch(self) -> float | None:
        """The one epoch all runs are compared at (None for models or runs compared at different epochs)."""
        e = self.matrix.epochs
        return float(e[0]) if len(e) and np.allclose(e, e[0]) and not self.models_only else None

    def subsets(self) -> dict[str, np.ndarray]:
        """The sample masks of the cross-run statistics: ``"all"`` and, with a difficulty split, ``"in_between"``."""
        out = {"all": self.keep}
        if self.difficulty is not None:
            out["in_between"] = self.difficulty.in_between & self.keep
        return out

    def detailed_runs(self) -> list[RunSummary]:
        """The runs with per-sample detail, the base run first (for models, the base model's predictions)."""
        order = [self.base_index] + [i for i in range(len(self.runs)) if i != self.base_index]
        return [self.runs[i] for i in order if self.runs[i].detail is not None]


def compare_runs(inputs: Sequence[str], options: CompareOptions | None = None) -> Comparison:
    """Load the runs and compute every cross-run result.

    Args:
        inputs: store files, directories or globs.
        options: what to compute.

    Raises:
        ValueError: an unknown base run, a label-error mask of the wrong length, runs of different datasets,
            no common epoch, a condition missing for a run, a tolerance the runs cannot support.
    """
    o = options or CompareOptions()
    o.progress("loading stores")
    loaded = load_runs(inputs, o.split, fields=())
    names = tuple(r.name for r in loaded)
    base = o.base or names[0]
    if base not in names:
        raise ValueError(f"Base run {base!r} is not among the runs {list(names)}. Pass --base with one of them.")
    base_i = names.index(base)
    n = int(loaded[0].ids.size)
    keep = _keep(o, n)
    notes = pending_notes(loaded, o.progress)
    m, how, kinds = choose_rows(loaded, o.row, o.epoch, o.epoch_source)
    kind = ("models" if all(k == KIND_EVALUATED for k in kinds) else "training runs"
            if all(k == KIND_TRAINED for k in kinds) else "training runs and evaluated models")
    o.progress(f"comparing {len(loaded)} runs at {m.row} ({how}); per-run outputs use "
               f"{'all recorded rows' if o.all_rows else 'rows up to the comparison epoch'}")
    notes += coverage_notes(loaded, n, o.progress)
    runs = run_summaries(loaded, m, kinds, base_i, split=o.split, all_rows=o.all_rows, detail=o.detail,
                         progress=o.progress)
    c = Comparison(options=o, names=names, base=base, base_index=base_i, n_samples=n, keep=keep, matrix=m, how=how,
                   kind=kind, runs=runs, notes=tuple(notes))
    if len(loaded) < 2:
        return dataclasses.replace(c, notes=c.notes + (
            "Only one run: cross-run figures (k histogram, kappa heat maps, kappa to the base run) need at least "
            "two runs.",))
    c = _difficulty(c, loaded)
    c = _consistency(c)
    if o.significance:
        c = _significance(c)
    c = _conditions(c)
    return _over_time(c, loaded)


def _keep(o: CompareOptions, n: int) -> np.ndarray:
    keep = np.ones(n, bool)
    if o.label_errors is not None and len(o.label_errors) != n:
        raise ValueError(f"The label-error mask has {len(o.label_errors)} entries; the runs have {n} samples.")
    if o.label_errors is not None and o.exclude_label_errors:
        keep = ~np.asarray(o.label_errors, bool)
    return keep


def _difficulty(c: Comparison, loaded: Sequence[Trajectory]) -> Comparison:
    """Count k over the reference runs; the binomial comparison, trivial / in-between / impossible, label errors."""
    o, m = c.options, c.matrix
    ref_correct, ref_eval, ref_names = m.correct, m.evaluated, m.runs
    if o.reference:
        ref_runs = load_runs(o.reference, o.split, fields=())
        check_same_dataset([loaded[0], *ref_runs])
        rm = runs_at_row(ref_runs, row=o.row, epoch=o.epoch if o.row is not None or o.epoch is not None
                         else c.comparison_epoch)
        ref_correct, ref_eval, ref_names = rm.correct, rm.evaluated, rm.runs
    k = np.where(c.keep, count_correct(ref_correct, ref_eval), -1)
    n_ref = ref_correct.shape[0]
    reference = Reference(runs=tuple(ref_names), k=k, own=sorted(ref_names) == sorted(c.names))
    notes = list(c.notes)
    difficulty = all_but_one = None
    try:
        check_tolerance(n_ref, o.tolerance)
        difficulty = summarize_difficulty(k, n_ref, tolerance=o.tolerance, runs=tuple(ref_names), row=m.row)
    except ValueError as err:
        if o.tolerance > 0:
            raise  # the user asked for a tolerance the runs cannot support
        notes.append(f"No trivial / impossible split: {err}")
    if o.tolerance == 0 and n_ref >= 5:
        all_but_one = summarize_difficulty(k, n_ref, tolerance=1, runs=tuple(ref_names), row=m.row)
    shares = None
    if difficulty is not None and o.label_errors is not None:
        shares = label_error_shares(difficulty.labels, o.label_errors)
    return dataclasses.replace(c, reference=reference, binomial=compare_to_binomial(k, n_ref), difficulty=difficulty,
                               all_but_one=all_but_one, label_errors=shares, notes=tuple(notes))


def _consistency(c: Comparison) -> Comparison:
    """Pairwise error consistency with bootstrap intervals, on all and on in-between samples."""
    o, m = c.options, c.matrix
    o.progress(f"error consistency of {len(c.names) * (len(c.names) - 1) // 2} pairs, {o.n_boot} bootstrap resamples")
    out = {"all": pairwise_consistency(m.correct, evaluated=m.evaluated, samples=c.keep, runs=c.names,
                                       n_boot=o.n_boot, seed=o.seed, subset="all", row=m.row)}
    notes = list(c.notes)
    mid = c.subsets().get("in_between")
    if mid is not None and mid.sum() >= 2:
        o.progress("error consistency on in-between samples")
        out["in_between"] = pairwise_consistency(m.correct, evaluated=m.evaluated, samples=mid, runs=c.names,
                                                 n_boot=o.n_boot, seed=o.seed, subset="in-between", row=m.row,
                                                 tolerance=o.tolerance)
    elif mid is not None:
        notes.append("Fewer than two in-between samples: no in-between consistency.")
    return dataclasses.replace(c, consistency=out, notes=tuple(notes))


def _significance(c: Comparison) -> Comparison:
    """Both tests against independence (corrected), the less biased kappa and the copy probability, for all and
    for in-between samples; a note when the in-between subset is too small to exclude 0.
    """
    o, m = c.options, c.matrix
    out = {}
    off_diagonal = ~np.eye(len(c.names), dtype=bool)
    for key, samples in c.subsets().items():
        if samples.sum() < 2:
            continue
        o.progress(f"significance against independence ({key.replace('_', '-')}, {o.null_draws} null draws)")
        s = significance_matrix(m.correct, evaluated=m.evaluated, samples=samples, runs=c.names,
                                n_draws=max(1, o.null_draws), seed=o.seed, method=o.p_adjust, subset=key)
        chance = (s.p_exact_adj >= 0.05) & off_diagonal
        if o.null_draws > 0:
            chance = chance | ((s.p_klein_adj >= 0.05) & off_diagonal)
        out[key] = SignificanceResult(result=s, klein=o.null_draws > 0, chance=chance)
    notes = list(c.notes)
    if "in_between" in out:
        note = short_in_between_note(m, c.subsets()["in_between"], out["in_between"].result, o.seed)
        if note:
            notes.append(note)
    return dataclasses.replace(c, significance=out, notes=tuple(notes))


def _conditions(c: Comparison) -> Comparison:
    """Per-condition mean kappas and the paired-bootstrap differences between conditions."""
    o = c.options
    conditions = auto_conditions(c.names) if o.conditions == "auto" else o.conditions
    if not isinstance(conditions, dict):
        return c
    missing = [n for n in c.names if n not in conditions]
    if missing:
        raise ValueError(f"No condition given for runs {missing}; name every run in the conditions file.")
    labels = tuple(conditions[n] for n in c.names)
    means = {key: condition_consistency(res.kappa, labels) for key, res in c.consistency.items()}
    diffs = condition_differences(c.matrix, c.subsets(), labels, c.base_index, n_boot=o.n_boot, seed=o.seed,
                                  method=o.p_adjust)
    return dataclasses.replace(c, conditions=Conditions(labels=labels, base_condition=labels[c.base_index],
                                                        means=means, differences=diffs))


def _over_time(c: Comparison, loaded: Sequence[Trajectory]) -> Comparison:
    """Kappa with the base run per common epoch, "+n epochs" and "different data"."""
    o = c.options
    runs = [r.trajectory for r in c.runs]
    to_base = None
    epochs, correct, evaluated = align_rows(runs)
    if len(epochs):
        kb = consistency_to_base(correct, base=c.base_index, evaluated_rows=evaluated)
        same = c.consistency.get("all")
        if same is None or not np.allclose(c.matrix.epochs, epochs[-1]) or not c.keep.all():
            same = None  # the main comparison is at other rows or on other samples: bootstrap again
        last = same or pairwise_consistency(correct[:, -1], evaluated=evaluated[:, -1], runs=c.names,
                                            n_boot=o.n_boot, seed=o.seed, row=f"epoch {epochs[-1]:g}")
        to_base = ToBase(epochs=epochs, kappa=kb, ci_low_last=last.ci_low[c.base_index],
                         ci_high_last=last.ci_high[c.base_index])
    plus = plus_epochs(loaded[c.base_index], int(c.matrix.rows[c.base_index]), c.subsets())
    different = None
    if c.conditions is not None and o.different_data is not None:
        idx = [i for i, lab in enumerate(c.conditions.labels) if lab == o.different_data]
        if len(idx) == 2:
            i, j = idx
            different = DifferentData(condition=o.different_data, runs=(c.names[i], c.names[j]), kappa={
                key: float(res.kappa[i, j]) for key, res in c.consistency.items()}, interval={
                key: (float(res.ci_low[i, j]), float(res.ci_high[i, j])) for key, res in c.consistency.items()})
    return dataclasses.replace(c, to_base=to_base, plus_epochs=tuple(plus), different_data=different)
