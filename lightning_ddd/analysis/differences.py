"""Is one run's consistency with the base different from another's? kappa(base, a) - kappa(base, b) on the same
samples, with a paired bootstrap over samples (ours; the report's condition differences use the same resampling).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lightning_ddd.analysis._checks import as_bool
from lightning_ddd.analysis.significance import _kappa


@dataclasses.dataclass
class KappaDifference:
    """kappa(base, a) - kappa(base, b) with its paired-bootstrap interval and two-sided p-value."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_boot: int


def kappa_difference(correct: np.ndarray, base: int, a: int, b: int, *, evaluated: np.ndarray | None = None,
                     samples: np.ndarray | None = None, n_boot: int = 1000, seed: int = 0,
                     confidence: float = 0.95) -> KappaDifference:
    """Paired bootstrap over samples for the difference of two kappas that share the base run.

    Every resample draws the same samples for both kappas, so their shared noise cancels. The p-value is
    two-sided: twice the smaller share of resampled differences on either side of 0.
    """
    c = as_bool(correct, "correct")
    v = np.ones_like(c) if evaluated is None else as_bool(evaluated, "evaluated")
    if samples is not None:
        keep = np.asarray(samples, bool)
        c, v = c[:, keep], v[:, keep]
    rows = [base, a, b]
    c, v = c[rows], v[rows]
    n = c.shape[1]

    observed = float(diff_batch(c, v, np.arange(n)[None, :])[0])
    rng = np.random.default_rng(seed)
    boots = []
    for start in range(0, n_boot, 200):
        k = min(200, n_boot - start)
        idx = rng.integers(0, n, size=(k, n))
        boots.append(diff_batch(c, v, idx))
    d = np.concatenate(boots) if boots else np.array([])
    alpha = (1 - confidence) / 2
    lo, hi = (np.nanquantile(d, [alpha, 1 - alpha]) if d.size else (np.nan, np.nan))
    p = float(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0)))) if d.size else np.nan
    return KappaDifference(difference=observed, ci_low=float(lo), ci_high=float(hi), p_value=p, n_boot=n_boot)


def diff_batch(c: np.ndarray, v: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """kappa(c[0], c[1]) - kappa(c[0], c[2]) for each row of resample indices ``idx`` (k, n)."""
    cc, vv = c[:, idx], v[:, idx]  # (3, k, n)
    both_a, both_b = vv[0] & vv[1], vv[0] & vv[2]
    ka = _kappa((cc[0] & cc[1] & both_a).sum(-1), (cc[0] & both_a).sum(-1), (cc[1] & both_a).sum(-1),
                both_a.sum(-1))
    kb = _kappa((cc[0] & cc[2] & both_b).sum(-1), (cc[0] & both_b).sum(-1), (cc[2] & both_b).sum(-1),
                both_b.sum(-1))
    return ka - kb
