"""Error consistency across runs (paper §2.2-2.3): all pairs with bootstrap intervals, to a base run per row,
"+n epochs", and conditions.

The bootstrap resamples samples with replacement. Samples are grouped by their pattern across runs
(correct / evaluated in each run); one resample is then a vector of pattern counts, and every pair's counts
follow from one matrix product, so 1,000 resamples of 13 runs x 50,000 samples take about a second. The
resamples are the same ones a loop over ``indices`` would use (``resample_indices`` exposes them).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np

from lightning_ddd.analysis._checks import as_bool
from lightning_ddd.analysis.kappa import PairStats, consistency_matrix, stats_from_counts


@dataclasses.dataclass
class ConsistencyResult:
    """Pairwise error consistency of M runs with bootstrap intervals.

    Attributes:
        stats: :class:`PairStats` of (M, M) matrices on the chosen samples.
        ci_low, ci_high: (M, M) percentile interval of kappa over bootstrap resamples (NaN without bootstrap).
        std_error: (M, M) bootstrap standard deviation of kappa.
        degenerate_share: (M, M) share of bootstrap resamples in which both runs are constant and equal (kappa
            undefined; 1 by our convention): left out of ``std_error`` and the interval (NaN without bootstrap).
        runs: run names.
        n_samples: samples used.
        subset: description of the samples used ("all", "in-between").
        n_boot: bootstrap resamples; confidence: interval level.
        row: the row used.
        tolerance: the tolerance that defined the subset (None for all samples).
    """

    stats: PairStats
    ci_low: np.ndarray
    ci_high: np.ndarray
    std_error: np.ndarray
    runs: tuple[str, ...]
    n_samples: int
    subset: str
    n_boot: int
    confidence: float
    row: str = "last"
    tolerance: int | None = None
    degenerate_share: np.ndarray | None = None

    @property
    def kappa(self) -> np.ndarray:
        """(M, M) kappa matrix."""
        return self.stats.kappa


def _patterns(correct: np.ndarray, evaluated: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique per-sample patterns: returns (inverse (N,), P correct&evaluated (U, M), V evaluated (U, M))."""
    m = correct.shape[0]
    v = np.ones_like(correct) if evaluated is None else evaluated
    cols = np.concatenate([correct & v, v], axis=0)  # (2M, N)
    packed = np.packbits(cols, axis=0)  # (ceil(2M/8), N)
    uniq, inverse = np.unique(packed, axis=1, return_inverse=True)
    bits = np.unpackbits(uniq, axis=0, count=2 * m).astype(bool)  # (2M, U)
    return inverse.reshape(-1), bits[:m].T, bits[m:].T


def resample_indices(n_samples: int, n_boot: int, seed: int, chunk: int = 100):  # noqa: ANN201
    """Yield bootstrap index arrays of shape (<=chunk, n_samples), n_boot rows in all (reproducible by seed)."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        yield rng.integers(0, n_samples, size=(b, n_samples))
        done += b


def bootstrap_kappa(correct: np.ndarray, *, evaluated: np.ndarray | None = None, n_boot: int = 1000,
                    seed: int = 0, degenerate: float = 1.0) -> np.ndarray:
    """Kappa of every pair for each bootstrap resample of the samples.

    Args:
        correct: (M, N) bool.
        evaluated: optional (M, N) bool.
        n_boot: resamples.
        seed: random seed (the resamples equal those of :func:`resample_indices` with this seed).
        degenerate: the value of a resample in which the pair's runs are constant and equal (default 1.0, our
            convention; NaN leaves them out of NaN-aware summaries).

    Returns:
        (n_boot, M, M) kappas.
    """
    m, n = correct.shape
    inverse, p, v = _patterns(correct, evaluated)
    u = p.shape[0]
    pf, vf = p.astype(np.float32), v.astype(np.float32)
    q11 = (pf[:, :, None] * pf[:, None, :]).reshape(u, m * m)
    qa = (pf[:, :, None] * vf[:, None, :]).reshape(u, m * m)
    qn = (vf[:, :, None] * vf[:, None, :]).reshape(u, m * m)
    out = np.empty((n_boot, m, m))
    start = 0
    for idx in resample_indices(n, n_boot, seed):
        b = idx.shape[0]
        pid = inverse[idx] + (np.arange(b)[:, None] * u)
        w = np.bincount(pid.ravel(), minlength=b * u).reshape(b, u).astype(np.float32)
        n11, na, nn = w @ q11, w @ qa, w @ qn
        nb = na.reshape(b, m, m).transpose(0, 2, 1)
        st = stats_from_counts(np.rint(n11).reshape(b, m, m), np.rint(na).reshape(b, m, m), np.rint(nb),
                               np.rint(nn).reshape(b, m, m))
        out[start:start + b] = np.where(st.degenerate, degenerate, st.kappa)
        start += b
    return out


def pairwise_consistency(correct: np.ndarray, *, evaluated: np.ndarray | None = None,
                         samples: np.ndarray | None = None, runs: Sequence[str] | None = None,
                         n_boot: int = 1000, confidence: float = 0.95, seed: int = 0, subset: str = "all",
                         row: str = "last", tolerance: int | None = None) -> ConsistencyResult:
    """Error consistency of every pair of runs with bootstrap confidence intervals over samples.

    Args:
        correct: (M, N) bool, one row per run.
        evaluated: optional (M, N) bool.
        samples: optional (N,) bool mask or index array: the one subset used for every pair and resample
            (e.g. in-between samples from :func:`~lightning_ddd.analysis.difficulty.summarize_difficulty`).
        runs: run names.
        n_boot: bootstrap resamples (0 for none).
        confidence: interval level.
        seed: bootstrap seed.
        subset: description stored in the result.
        row: description of the row stored in the result.
        tolerance: the tolerance that defined ``samples``, stored in the result.
    """
    c = as_bool(correct, "correct")
    if c.ndim != 2:
        raise ValueError(f"correct must be (runs, samples), got {c.shape}.")
    ev = None if evaluated is None else as_bool(evaluated, "evaluated")
    if samples is not None:
        sel = np.asarray(samples)
        c = c[:, sel]
        ev = None if ev is None else ev[:, sel]
    m, n = c.shape
    names = tuple(runs) if runs is not None else tuple(f"run{i}" for i in range(m))
    if len(names) != m:
        raise ValueError(f"{len(names)} run names for {m} runs.")
    stats = consistency_matrix(c, evaluated=ev)
    nan = np.full((m, m), np.nan)
    lo, hi, se, share = nan, nan.copy(), nan.copy(), nan.copy()
    if n_boot and n:
        # resamples where a pair's runs are constant and equal have no defined kappa: out of the SE and interval
        boot = bootstrap_kappa(c, evaluated=ev, n_boot=n_boot, seed=seed, degenerate=np.inf)
        share = np.isinf(boot).mean(axis=0)
        boot[np.isinf(boot)] = np.nan
        alpha = (1 - confidence) / 2
        with warnings.catch_warnings():  # all-NaN cells (no common sample) stay NaN, silently
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanquantile(boot, [alpha, 1 - alpha], axis=0)
            se = np.nanstd(boot, axis=0)
    return ConsistencyResult(stats=stats, ci_low=lo, ci_high=hi, std_error=se, runs=names, n_samples=n,
                             subset=subset, n_boot=n_boot, confidence=confidence, row=row, tolerance=tolerance,
                             degenerate_share=share)


def consistency_to_base(correct_rows: np.ndarray, *, base: int = 0, evaluated_rows: np.ndarray | None = None
                        ) -> np.ndarray:
    """Kappa of every run with the base run at each row: kappa(C[m, r], C[base, r]).

    Args:
        correct_rows: (M, R, N) bool, runs aligned on rows (same epochs).
        base: index of the base run.
        evaluated_rows: optional (M, R, N) bool.

    Returns:
        (M, R) kappas (the base's own row is 1).
    """
    c = as_bool(correct_rows, "correct_rows")
    if c.ndim != 3:
        raise ValueError(f"correct_rows must be (runs, rows, samples), got {c.shape}.")
    v = np.ones_like(c) if evaluated_rows is None else as_bool(evaluated_rows, "evaluated_rows")
    b, bv = c[base][None], v[base][None]
    both = v & bv
    st = stats_from_counts((c & b & both).sum(-1), (c & both).sum(-1), (b & both).sum(-1), both.sum(-1))
    return st.kappa


def consistency_plus_n(correct_rows: np.ndarray, n: int, *, evaluated_rows: np.ndarray | None = None
                       ) -> np.ndarray:
    """"+n epochs": kappa(C[r + n], C[r]) of one run with itself n rows later, for r = 0..R-n-1.

    Args:
        correct_rows: (R, N) bool, one run's rows.
        n: row offset (>= 1).
        evaluated_rows: optional (R, N) bool.
    """
    c = as_bool(correct_rows, "correct_rows")
    if n < 1 or n >= c.shape[0]:
        raise ValueError(f"n must be in [1, {c.shape[0] - 1}], got {n}.")
    v = np.ones_like(c) if evaluated_rows is None else as_bool(evaluated_rows, "evaluated_rows")
    a, b = c[n:], c[:-n]
    both = v[n:] & v[:-n]
    return stats_from_counts((a & b & both).sum(-1), (a & both).sum(-1), (b & both).sum(-1), both.sum(-1)).kappa


@dataclasses.dataclass
class ConditionConsistency:
    """Mean kappa between conditions over their model pairs (never a run with itself).

    Attributes:
        conditions: condition names, in order.
        mean: (C, C) mean kappa over pairs.
        std_error: (C, C) standard error of that mean (NaN with one pair).
        n_pairs: (C, C) number of pairs.
    """

    conditions: tuple[str, ...]
    mean: np.ndarray
    std_error: np.ndarray
    n_pairs: np.ndarray


def condition_consistency(kappa: np.ndarray, conditions: Sequence[str]) -> ConditionConsistency:
    """Group a run-by-run kappa matrix into conditions.

    Args:
        kappa: (M, M) kappa matrix.
        conditions: (M,) condition name of each run.
    """
    kappa = np.asarray(kappa)
    labels = list(conditions)
    if kappa.shape != (len(labels), len(labels)):
        raise ValueError(f"kappa is {kappa.shape} for {len(labels)} runs.")
    names = tuple(dict.fromkeys(labels))
    idx = {c: np.flatnonzero(np.array(labels) == c) for c in names}
    k = len(names)
    mean, se, npairs = np.full((k, k), np.nan), np.full((k, k), np.nan), np.zeros((k, k), int)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            ia, ib = idx[a], idx[b]
            block = kappa[np.ix_(ia, ib)]
            if a == b:
                vals = block[np.triu_indices(len(ia), 1)]
            else:
                vals = block[ia[:, None] != ib[None, :]]
            vals = vals[np.isfinite(vals)]
            npairs[i, j] = vals.size
            if vals.size:
                mean[i, j] = vals.mean()
                se[i, j] = vals.std(ddof=1) / np.sqrt(vals.size) if vals.size > 1 else np.nan
    return ConditionConsistency(conditions=names, mean=mean, std_error=se, n_pairs=npairs)
