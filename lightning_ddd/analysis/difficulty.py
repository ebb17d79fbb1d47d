"""Dichotomous data difficulty across runs (paper §2.4, §2.6): k, trivial / impossible / in-between, the
binomial reference and label errors.

k[i] is the number of runs correct on sample i at the chosen row, always an integer count. With a tolerance
t, a sample is **trivial** when k >= M - t, **impossible** when k <= t, **in-between** otherwise (t = 0 is
the strict rule, t = 1 the paper's "all but one" rule). The paper's code removed "the two highest and two
lowest distinct observed values of k"; that equals the all-but-one rule only when all four levels occur,
so this module implements the rule by count, as the paper's text defines it.
"""

from __future__ import annotations

import dataclasses
import enum
import math

import numpy as np


class Difficulty(enum.IntEnum):
    """Per-sample difficulty across runs."""

    TRIVIAL = 0
    IN_BETWEEN = 1
    IMPOSSIBLE = 2
    UNOBSERVED = 3

    @property
    def key(self) -> str:
        """The name used in JSON, CSV and the explorer (``"in_between"``)."""
        return self.name.lower()

    @property
    def text(self) -> str:
        """The name in prose (``"in-between"``)."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def keys(cls) -> np.ndarray:
        """Every member's :attr:`key`, indexable by the member's value (``keys()[labels]``)."""
        return np.array([m.key for m in cls])

    @classmethod
    def observed(cls) -> tuple[Difficulty, ...]:
        """Trivial, in-between and impossible: the classes of samples every run evaluated."""
        return (cls.TRIVIAL, cls.IN_BETWEEN, cls.IMPOSSIBLE)


def count_correct(correct: np.ndarray, evaluated: np.ndarray | None = None) -> np.ndarray:
    """Return k, the number of runs correct per sample, as integers.

    Args:
        correct: (M, N) bool, one row per run.
        evaluated: optional (M, N) bool; a sample must be evaluated in every run to get a k.

    Returns:
        (N,) int64; -1 where a sample is missing from some run.
    """
    if not isinstance(correct, np.ndarray):
        raise TypeError(f"correct must be a numpy array, got {type(correct).__name__}.")
    if correct.ndim != 2:
        raise ValueError(f"correct must be (runs, samples), got shape {correct.shape}.")
    k = correct.astype(bool).sum(axis=0, dtype=np.int64)
    if evaluated is not None:
        k = np.where(np.asarray(evaluated, bool).all(axis=0), k, -1)
    return k


def k_from_fractions(fraction_correct: np.ndarray, n_runs: int) -> np.ndarray:
    """Turn published fractions of runs correct (k / M as floats) into integer k by rounding.

    Raises:
        ValueError: a value is not within 1e-6 of a multiple of 1 / n_runs.
    """
    scaled = np.asarray(fraction_correct, np.float64).reshape(-1) * n_runs
    k = np.rint(scaled)
    if np.abs(scaled - k).max(initial=0) > 1e-6 or (k < 0).any() or (k > n_runs).any():
        raise ValueError(f"Fractions are not multiples of 1/{n_runs} in [0, 1]; is n_runs right?")
    return k.astype(np.int64)


def check_tolerance(n_runs: int, tolerance: int) -> None:
    """Refuse a rule that leaves no room for in-between samples.

    Raises:
        ValueError: fewer than ``2 * tolerance + 3`` runs (strict removal needs at least 3 runs).
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}.")
    if n_runs < 2 * tolerance + 3:
        raise ValueError(
            f"Removing trivial and impossible samples with tolerance {tolerance} needs at least "
            f"{2 * tolerance + 3} distinct runs, got {n_runs}: with fewer, 'in-between' is only the disagreement "
            "of the runs themselves. Add runs, lower the tolerance, or name a larger reference set."
        )


def classify_difficulty(k: np.ndarray, n_runs: int, *, tolerance: int = 0) -> np.ndarray:
    """Label each sample trivial, in-between or impossible from k.

    Args:
        k: (N,) integer counts of runs correct (-1: missing).
        n_runs: M, the number of distinct runs k was counted over.
        tolerance: t; trivial k >= M - t, impossible k <= t.

    Returns:
        (N,) int8 :class:`Difficulty` values.
    """
    check_tolerance(n_runs, tolerance)
    k = np.asarray(k)
    if not np.issubdtype(k.dtype, np.integer):
        raise TypeError("k must be integer counts; use k_from_fractions() for published fractions.")
    if (k > n_runs).any():
        raise ValueError(f"k exceeds n_runs={n_runs}.")
    out = np.full(k.shape, Difficulty.IN_BETWEEN, np.int8)
    out[k >= n_runs - tolerance] = Difficulty.TRIVIAL
    out[(k <= tolerance) & (k >= 0)] = Difficulty.IMPOSSIBLE
    out[k < 0] = Difficulty.UNOBSERVED
    return out


@dataclasses.dataclass
class DifficultyResult:
    """Trivial / in-between / impossible split of a set of runs.

    Attributes:
        k: (N,) runs correct per sample.
        labels: (N,) :class:`Difficulty`.
        n_runs: M.
        tolerance: t.
        fractions: share of observed samples that are trivial, in_between, impossible.
        counts: the same as counts.
        mean_accuracy: mean accuracy over runs (mean k / M).
        runs: names of the runs k was counted over.
        row: the row (or description) used.
    """

    k: np.ndarray
    labels: np.ndarray
    n_runs: int
    tolerance: int
    fractions: dict[str, float]
    counts: dict[str, int]
    mean_accuracy: float
    runs: tuple[str, ...] = ()
    row: str = "last"

    @property
    def in_between(self) -> np.ndarray:
        """(N,) bool mask of in-between samples."""
        return self.labels == Difficulty.IN_BETWEEN


def summarize_difficulty(k: np.ndarray, n_runs: int, *, tolerance: int = 0, runs: tuple[str, ...] = (),
                         row: str = "last") -> DifficultyResult:
    """Classify samples from k and count each class.

    Example::

        >>> r = summarize_difficulty(np.array([0, 3, 3, 1, 2]), 3)
        >>> r.counts
        {'trivial': 2, 'in_between': 2, 'impossible': 1}
    """
    labels = classify_difficulty(k, n_runs, tolerance=tolerance)
    observed = labels != Difficulty.UNOBSERVED
    total = int(observed.sum())
    counts = {d.key: int(np.sum(labels == d)) for d in Difficulty.observed()}
    fractions = {n: (c / total if total else float("nan")) for n, c in counts.items()}
    kk = np.asarray(k)[observed]
    mean_acc = float(kk.mean() / n_runs) if total else float("nan")
    return DifficultyResult(k=np.asarray(k), labels=labels, n_runs=n_runs, tolerance=tolerance, fractions=fractions,
                            counts=counts, mean_accuracy=mean_acc, runs=tuple(runs), row=row)


def binomial_reference(n_runs: int, p: float) -> np.ndarray:
    """Analytic Binomial(M, p) pmf over k = 0..M: all samples equally hard, runs independent."""
    if not 0 <= p <= 1:
        raise ValueError(f"p must lie in [0, 1], got {p}.")
    return np.array([math.comb(n_runs, k) * p**k * (1 - p) ** (n_runs - k) for k in range(n_runs + 1)])


def pure_ddd_reference(n_runs: int, p: float) -> np.ndarray:
    """The opposite extreme: 1 - p at k = 0 and p at k = M (every sample trivial or impossible)."""
    ref = np.zeros(n_runs + 1)
    ref[0], ref[-1] = 1 - p, p
    return ref


def k_histogram(k: np.ndarray, n_runs: int) -> np.ndarray:
    """Fraction of observed samples at each k = 0..M."""
    kk = np.asarray(k)
    kk = kk[kk >= 0]
    return np.bincount(kk, minlength=n_runs + 1)[: n_runs + 1] / max(kk.size, 1)


@dataclasses.dataclass
class BinomialComparison:
    """Observed distribution of k against the binomial reference.

    Attributes:
        observed: fraction of samples at each k.
        binomial: Binomial(M, p) pmf at the mean accuracy p.
        pure_ddd: two spikes at k = 0 and k = M.
        mean_accuracy: p.
        total_variation: 0.5 * sum |observed - binomial|, 0 (binomial) to 1; the one number for the distance.
        excess_extremes: observed minus binomial share at k = 0 and k = M together.
    """

    observed: np.ndarray
    binomial: np.ndarray
    pure_ddd: np.ndarray
    mean_accuracy: float
    total_variation: float
    excess_extremes: float


def compare_to_binomial(k: np.ndarray, n_runs: int) -> BinomialComparison:
    """Compare the observed histogram of k with Binomial(M, p) at the mean accuracy."""
    kk = np.asarray(k)
    kk = kk[kk >= 0]
    p = float(kk.mean() / n_runs) if kk.size else float("nan")
    observed = k_histogram(kk, n_runs)
    binom = binomial_reference(n_runs, p)
    tv = 0.5 * float(np.abs(observed - binom).sum())
    extremes = float(observed[0] + observed[-1] - binom[0] - binom[-1])
    return BinomialComparison(observed=observed, binomial=binom, pure_ddd=pure_ddd_reference(n_runs, p),
                              mean_accuracy=p, total_variation=tv, excess_extremes=extremes)


@dataclasses.dataclass
class LabelErrorShares:
    """How label errors fall into the difficulty classes.

    Attributes:
        share_within: per class, the fraction of its samples that are label errors.
        share_of_errors: per class, the fraction of all label errors that fall into it.
        counts: per class, the number of label errors.
        total_errors: number of label errors among observed samples.
    """

    share_within: dict[str, float]
    share_of_errors: dict[str, float]
    counts: dict[str, int]
    total_errors: int


def label_error_shares(labels: np.ndarray, label_errors: np.ndarray) -> LabelErrorShares:
    """Share of label errors among trivial, in-between and impossible samples (paper §2.6).

    Args:
        labels: (N,) :class:`Difficulty` values.
        label_errors: (N,) bool (or 0/1) mask of known label errors.
    """
    le = np.asarray(label_errors).reshape(-1).astype(bool)
    if le.shape != np.shape(labels):
        raise ValueError(f"label_errors has {le.shape[0]} entries, labels {np.shape(labels)[0]}.")
    observed = labels != Difficulty.UNOBSERVED
    total = int((le & observed).sum())
    within, of_errors, counts = {}, {}, {}
    for d in Difficulty.observed():
        name, members = d.key, labels == d
        c = int((le & members).sum())
        counts[name] = c
        within[name] = c / members.sum() if members.any() else float("nan")
        of_errors[name] = c / total if total else float("nan")
    return LabelErrorShares(share_within=within, share_of_errors=of_errors, counts=counts, total_errors=total)
