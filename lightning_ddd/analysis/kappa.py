"""Error consistency (Cohen's kappa on correctness), paper §2.2, for one pair or every pair at once.

Conventions (documented and tested):

* Only samples evaluated in both vectors count; accuracies are recomputed on that subset.
* When the expected consistency is 1 (both vectors constant and equal), kappa is **1.0**. This is
  **our** convention (lightning-ddd's: two identical constant vectors agree perfectly), not the literature's:
  scikit-learn's ``cohen_kappa_score`` returns NaN there, and Klein et al. (2025)'s reference
  ``error_consistency`` returns NaN and calls 1 a bug. :attr:`PairStats.degenerate` marks these pairs;
  bootstrap standard errors and intervals leave such resamples out and report their share
  (:attr:`~lightning_ddd.analysis.consistency.ConsistencyResult.degenerate_share`).
* With no common sample, every statistic is NaN.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lightning_ddd.analysis._checks import as_bool


@dataclasses.dataclass
class PairStats:
    """Error-consistency statistics of pairs of correctness vectors (scalars or (M, M) matrices).

    Attributes:
        kappa: Cohen's kappa on correctness.
        observed: c_obs, fraction of common samples where both are right or both wrong.
        expected: c_exp = p_a p_b + (1 - p_a)(1 - p_b).
        kappa_min: smallest kappa possible given the two accuracies.
        kappa_max: largest kappa possible given the two accuracies.
        acc_a: accuracy of the first vector on the common samples.
        acc_b: accuracy of the second vector on the common samples.
        n: number of common samples.
    """

    kappa: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    kappa_min: np.ndarray
    kappa_max: np.ndarray
    acc_a: np.ndarray
    acc_b: np.ndarray
    n: np.ndarray

    @property
    def degenerate(self) -> np.ndarray:
        """Where the expected consistency is 1 (both vectors constant and equal): kappa is 1 by our convention,
        undefined in Cohen's formula.
        """
        return np.isclose(self.expected, 1.0, rtol=0, atol=1e-12)


def _kappa_from(c_obs: np.ndarray, c_exp: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        k = (c_obs - c_exp) / (1.0 - c_exp)
    # c_exp == 1 only when both vectors are constant and equal, hence c_obs == 1: 1.0 by our convention
    return np.where(np.isclose(c_exp, 1.0, rtol=0, atol=1e-12) & ~np.isnan(c_obs), 1.0, k)


def stats_from_counts(n11: np.ndarray, n_a: np.ndarray, n_b: np.ndarray, n: np.ndarray) -> PairStats:
    """Pair statistics from counts: both correct, a correct, b correct, common samples.

    Works elementwise on arrays of any shape, which lets callers compute every pair, row or bootstrap
    resample at once.
    """
    n11, n_a, n_b, n = (np.asarray(x, dtype=np.float64) for x in (n11, n_a, n_b, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        n00 = n - n_a - n_b + n11
        c_obs = (n11 + n00) / n
        p_a = n_a / n
        p_b = n_b / n
    c_exp = p_a * p_b + (1 - p_a) * (1 - p_b)
    lo = np.abs(p_a + p_b - 1)
    hi = 1 - np.abs(p_a - p_b)
    return PairStats(
        kappa=_kappa_from(c_obs, c_exp), observed=c_obs, expected=c_exp,
        kappa_min=_kappa_from(lo, c_exp), kappa_max=_kappa_from(hi, c_exp),
        acc_a=p_a, acc_b=p_b, n=n,
    )


def error_consistency(a: np.ndarray, b: np.ndarray, *, valid: np.ndarray | None = None) -> PairStats:
    """Error consistency of two correctness vectors.

    Args:
        a: (N,) bool, correctness of the first model.
        b: (N,) bool, correctness of the second model.
        valid: optional (N,) bool, samples to use (e.g. evaluated in both).

    Returns:
        Scalar :class:`PairStats`.

    Example::

        >>> float(error_consistency(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])).kappa)
        0.5
    """
    a, b = as_bool(a, "a"), as_bool(b, "b")
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D of equal length, got {a.shape} and {b.shape}.")
    v = np.ones_like(a) if valid is None else as_bool(valid, "valid")
    return stats_from_counts(np.sum(a & b & v), np.sum(a & v), np.sum(b & v), np.sum(v))


def consistency_matrix(correct: np.ndarray, *, evaluated: np.ndarray | None = None) -> PairStats:
    """Error consistency for every pair of runs, as (M, M) matrices, with two matrix products.

    Args:
        correct: (M, N) bool, one row per run.
        evaluated: optional (M, N) bool; a pair uses the samples evaluated in both runs.

    Returns:
        :class:`PairStats` of (M, M) arrays; the diagonal compares a run with itself (kappa 1).
    """
    c = as_bool(correct, "correct")
    if c.ndim != 2:
        raise ValueError(f"correct must be (runs, samples), got shape {c.shape}.")
    if evaluated is None:
        cf = c.astype(np.float32)
        n11 = cf @ cf.T
        ones = np.full(c.shape[1], 1.0, dtype=np.float32)
        per = cf @ ones
        n_a = np.broadcast_to(per[:, None], n11.shape)
        n_b = np.broadcast_to(per[None, :], n11.shape)
        n = np.full(n11.shape, c.shape[1], dtype=np.float64)
    else:
        v = as_bool(evaluated, "evaluated")
        if v.shape != c.shape:
            raise ValueError(f"evaluated has shape {v.shape}, correct {c.shape}.")
        cv = (c & v).astype(np.float32)
        vf = v.astype(np.float32)
        n11 = cv @ cv.T
        n_a = cv @ vf.T
        n_b = n_a.T
        n = np.asarray(vf @ vf.T, dtype=np.float64)
    return stats_from_counts(np.rint(n11), np.rint(n_a), np.rint(n_b), np.rint(n))
