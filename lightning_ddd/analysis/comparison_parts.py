"""The parts of a :class:`~lightning_ddd.analysis.comparison.Comparison`: per-run results, significance,
conditions, and the paper's comparisons over time ("+n epochs", kappa with the base run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from lightning_ddd.analysis.consistency import ConditionConsistency, bootstrap_kappa, pairwise_consistency
from lightning_ddd.analysis.dynamics import Dynamics
from lightning_ddd.analysis.kappa import error_consistency
from lightning_ddd.analysis.loading import RunMatrix, Trajectory
from lightning_ddd.analysis.planning import samples_for_power, samples_for_width
from lightning_ddd.analysis.significance import Significance, adjust_pvalues, pair_counts


@dataclasses.dataclass(frozen=True)
class TrainingDynamics:
    """A run's training-split dynamics: where data maps, AUM and training forgetting events are defined.

    Attributes:
        split: the training split's name.
        trajectory: its rows (up to the comparison epoch unless ``all_rows``).
        dynamics: their per-sample results.
    """

    split: str
    trajectory: Trajectory
    dynamics: Dynamics


@dataclasses.dataclass(frozen=True)
class RunDetail:
    """Per-sample detail of one run: every recorded field loaded, dynamics with probabilities and margins.

    Attributes:
        trajectory: the run's rows with predictions, probabilities and margins where recorded.
        dynamics: per-sample results on the compared split.
        training: the training split's dynamics, if the run recorded one with probabilities.
    """

    trajectory: Trajectory
    dynamics: Dynamics
    training: TrainingDynamics | None


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One run's results.

    Attributes:
        name: run name; kind: ``"training run"`` or ``"evaluated model"``.
        trajectory: its rows used for per-run outputs (correctness only).
        row: its comparison row; epoch: that row's epoch.
        dynamics: per-sample and per-row results of ``trajectory``.
        detail: per-sample detail (the first runs only; None for the others).
        evaluated_per_row: (R,) samples each recorded row evaluated (all rows, not only those used).
        evaluated_at_comparison: samples its comparison row evaluated.
    """

    name: str
    kind: str
    trajectory: Trajectory
    row: int
    epoch: float
    dynamics: Dynamics
    detail: RunDetail | None
    evaluated_per_row: np.ndarray
    evaluated_at_comparison: int


@dataclasses.dataclass(frozen=True)
class SignificanceResult:
    """Significance of every pair on one subset.

    Attributes:
        result: the tests and effect sizes.
        klein: Klein et al.'s test was run (``null_draws`` > 0).
        chance: (M, M) pairs whose corrected p-values (either test) do not exclude chance at 0.05.
    """

    result: Significance
    klein: bool
    chance: np.ndarray


@dataclasses.dataclass(frozen=True)
class ConditionDifference:
    """The difference of two conditions' mean kappa with the base run, by a paired bootstrap over samples."""

    a: str
    b: str
    difference: float
    ci_low: float
    ci_high: float
    p: float
    p_adj: float


@dataclasses.dataclass(frozen=True)
class Conditions:
    """Runs grouped into conditions.

    Attributes:
        labels: (M,) condition of each run.
        base_condition: the base run's condition.
        means: per subset, mean kappa between conditions.
        differences: per subset, the differences of the other conditions' consistency with the base (empty
            with fewer than two other conditions or without bootstrap).
    """

    labels: tuple[str, ...]
    base_condition: str
    means: dict[str, ConditionConsistency]
    differences: dict[str, tuple[ConditionDifference, ...]]


@dataclasses.dataclass(frozen=True)
class ToBase:
    """Kappa of every run with the base run at every epoch all runs recorded (the paper's Figure 3).

    Attributes:
        epochs: (E,) common epochs; kappa: (M, E); ci_low_last, ci_high_last: (M,) intervals at the last one.
    """

    epochs: np.ndarray
    kappa: np.ndarray
    ci_low_last: np.ndarray
    ci_high_last: np.ndarray


@dataclasses.dataclass(frozen=True)
class PlusEpoch:
    """"+n epochs" (paper §3): the base run at the comparison epoch E with itself at E + n.

    Attributes:
        n: epochs later; epoch: E + n; kappa, samples: per subset, kappa and the samples it used.
    """

    n: float
    epoch: float
    kappa: dict[str, float]
    samples: dict[str, int]


@dataclasses.dataclass(frozen=True)
class DifferentData:
    """The paper's "different data": the two runs on disjoint halves of the data, with each other.

    Attributes:
        condition: their condition; runs: their names; kappa, interval: per subset.
    """

    condition: str
    runs: tuple[str, str]
    kappa: dict[str, float]
    interval: dict[str, tuple[float, float]]


def plus_epochs(base_full: Trajectory, at: int, subsets: Mapping[str, np.ndarray]) -> list[PlusEpoch]:
    """"+n epochs" for every later row n the base run recorded."""
    out = []
    e0 = float(base_full.epochs[at])
    for r in range(at + 1, len(base_full.epochs)):
        kappa, samples = {}, {}
        for key, keep in subsets.items():
            valid = keep & base_full.evaluated[r] & base_full.evaluated[at]
            kappa[key] = float(error_consistency(base_full.correct[r], base_full.correct[at], valid=valid).kappa)
            samples[key] = int(valid.sum())
        out.append(PlusEpoch(n=float(base_full.epochs[r] - e0), epoch=float(base_full.epochs[r]), kappa=kappa,
                             samples=samples))
    return out


def condition_differences(m: RunMatrix, subsets: Mapping[str, np.ndarray], labels: tuple[str, ...], base_i: int,
                          *, n_boot: int, seed: int, method: str) -> dict[str, tuple[ConditionDifference, ...]]:
    """Is a condition's consistency with the base run different from another's? A paired bootstrap over
    samples of the difference of their mean kappas with the base (runs of the base's own condition excluded).
    """
    conds = [c for c in dict.fromkeys(labels) if c != labels[base_i]]
    if len(conds) < 2 or n_boot < 1:
        return {}
    idx = {c: [i for i, lab in enumerate(labels) if lab == c and i != base_i] for c in conds}
    out: dict[str, tuple[ConditionDifference, ...]] = {}
    for key, samples in subsets.items():
        if samples.sum() < 2:
            continue
        boot = bootstrap_kappa(m.correct[:, samples], evaluated=m.evaluated[:, samples], n_boot=n_boot,
                               seed=seed + 1)[:, base_i, :]  # (B, M): every run's kappa with the base
        full = pairwise_consistency(m.correct, evaluated=m.evaluated, samples=samples, n_boot=0).kappa[base_i]
        raw = []
        for x in range(len(conds)):
            for y in range(x + 1, len(conds)):
                a, b = conds[x], conds[y]
                d_boot = np.nanmean(boot[:, idx[a]], axis=1) - np.nanmean(boot[:, idx[b]], axis=1)
                d = float(np.nanmean(full[idx[a]]) - np.nanmean(full[idx[b]]))
                lo, hi = np.nanquantile(d_boot, [0.025, 0.975])
                p = float(min(1.0, 2 * min(np.mean(d_boot <= 0), np.mean(d_boot >= 0))))
                raw.append((a, b, d, float(lo), float(hi), p))
        p_adj = adjust_pvalues(np.array([r[5] for r in raw]), method)
        out[key] = tuple(ConditionDifference(*r, p_adj=float(pa)) for r, pa in zip(raw, p_adj))
    return out


def short_in_between_note(m: RunMatrix, in_between: np.ndarray, sig: Significance, seed: int) -> str | None:
    """A note when the in-between subset is too small for some pairs' intervals to exclude 0, with the
    simulated number of samples the hardest pair would need for an 80 % chance to.
    """
    short = []
    n11, na, nb, n = pair_counts(m.correct, m.evaluated, in_between)
    names = sig.runs
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            k = float(sig.debiased[i, j]) if np.isfinite(sig.debiased[i, j]) else 0.0
            if n[i, j] < 2 or abs(k) < 1e-6:
                continue
            a1, a2 = na[i, j] / n[i, j], nb[i, j] / n[i, j]
            try:
                needed = samples_for_width(a1, a2, float(np.clip(k, -0.99, 0.99)), 2 * abs(k))
            except ValueError:
                continue
            if needed > n[i, j]:
                short.append((needed, a1, a2, float(np.clip(k, -0.99, 0.99))))
    if not short:
        return None
    _, a1, a2, k = max(short)  # the pair that needs the most samples
    try:
        plan = samples_for_power(a1, a2, k, power=0.8, n_sim=500, n_boot=200, seed=seed)
        need = f"the hardest of them would need about {plan.n} samples for an 80 % chance to exclude 0"
    except ValueError:
        need = "no feasible number of samples would let the hardest of them exclude 0"
    return (f"The in-between subset ({int(in_between.sum())} samples) is too small for the 95 % intervals of "
            f"{len(short)} pair(s) to exclude 0 at their observed kappa ({need}, simulated; `lightning-ddd plan` "
            "computes this for given accuracies and kappa).")
