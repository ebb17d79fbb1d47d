"""How many samples (trials) does an error-consistency comparison need? Planned for a stated power.

* :func:`samples_for_power` (ours): the smallest n at which a study of n i.i.d. trials by two observers of
  accuracies a1, a2 and error consistency kappa **excludes 0 from its 95 % interval with the stated
  probability** (default 80 %), found by simulation. Each simulated study draws its 2x2 table (one
  multinomial draw of n trials) and its percentile-bootstrap interval (``n_boot`` multinomial resamples of
  that table, the interval :func:`~lightning_ddd.analysis.consistency.pairwise_consistency` reports); a study
  whose kappa is undefined (both observers constant and equal) or whose interval touches 0 fails. The n at
  which the *expected* interval just touches 0 (:func:`samples_for_width` with width 2 |kappa|) succeeds far
  less often (24-54 % by issue 25's simulations; ``tests/test_significance.py`` checks it stays below 65 %),
  which is why it is no longer the default.
* Difference from Klein et al. (2025): their simulator copies a fixed number of trials from one observer to
  the other (a fixed copy count per study); we assume i.i.d. trials with the given joint probabilities, so the
  table's cells vary multinomially. Their interval widths differ from the delta-method ones by a factor of
  0.89 to 1.51 over the cases issue 25 checked (not re-measured here); both are simulations of a stated
  model, and ours is the one the report's bootstrap uses.
* :func:`samples_for_difference` (ours): the smallest n at which two pairs of observers, each on its own n
  i.i.d. trials, **tell their two kappas apart** (the 95 % percentile-bootstrap interval of kappa_1 - kappa_2
  excludes 0) with the stated probability. Pairs measured on the same trials (one base observer against two
  others) share samples; the report's paired bootstrap is then narrower, so this n is conservative for them.
* :func:`kappa_standard_error`, :func:`interval_width`, :func:`samples_for_width`: the large-sample
  (delta-method) standard error of kappa, the expected 95 % interval width for n samples, and the n for a
  target width.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence

import numpy as np

Z95 = 1.959963984540054

def _cells(acc_a: float, acc_b: float, kappa: float) -> np.ndarray:
    c_exp = acc_a * acc_b + (1 - acc_a) * (1 - acc_b)
    c_obs = kappa * (1 - c_exp) + c_exp
    p11 = (c_obs - 1 + acc_a + acc_b) / 2
    cells = np.array([p11, acc_a - p11, acc_b - p11, 1 - acc_a - acc_b + p11])
    if (cells < -1e-12).any():
        raise ValueError(f"kappa {kappa} is impossible for accuracies {acc_a} and {acc_b} (kappa lies between "
                         "the bounds the two accuracies allow).")
    return np.clip(cells, 0, 1)


def kappa_standard_error(acc_a: float, acc_b: float, kappa: float, n: float) -> float:
    """Large-sample (delta-method) standard error of kappa for n samples, two observers of these accuracies."""
    p = _cells(acc_a, acc_b, kappa)
    p11, p10, p01, p00 = p
    pa, pb = p11 + p10, p11 + p01
    pe = pa * pb + (1 - pa) * (1 - pb)
    po = p11 + p00
    if np.isclose(pe, 1.0):
        return 0.0
    # d kappa / d cell, with po and pe as functions of the four cells
    dpo = np.array([1.0, 0.0, 0.0, 1.0])
    dpa = np.array([1.0, 1.0, 0.0, 0.0])
    dpb = np.array([1.0, 0.0, 1.0, 0.0])
    dpe = dpa * pb + pa * dpb - dpa * (1 - pb) - (1 - pa) * dpb
    grad = dpo / (1 - pe) + dpe * (po - 1) / (1 - pe) ** 2  # d kappa, kappa = (po - pe) / (1 - pe)
    cov = np.diag(p) - np.outer(p, p)
    return float(np.sqrt(max(grad @ cov @ grad, 0.0) / n))


def interval_width(acc_a: float, acc_b: float, kappa: float, n: float) -> float:
    """Expected width of the 95 % interval of kappa with n samples."""
    return 2 * Z95 * kappa_standard_error(acc_a, acc_b, kappa, n)


def samples_for_width(acc_a: float, acc_b: float, kappa: float, width: float) -> int:
    """Samples needed for a 95 % interval of kappa no wider than ``width``."""
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}.")
    unit = kappa_standard_error(acc_a, acc_b, kappa, 1.0)
    return max(1, int(np.ceil((2 * Z95 * unit / width) ** 2)))


@dataclasses.dataclass(frozen=True)
class PowerPlan:
    """A planned study size.

    Attributes:
        n: trials (samples) needed.
        power: the simulated probability that the interval excludes 0 at ``n`` (at least the target).
        target: the power asked for.
        undefined: the simulated share of studies of ``n`` trials whose kappa is undefined.
        expected_errors: expected errors of each observer at ``n`` trials, n (1 - accuracy).
        n_sim: simulated studies per n; n_boot: bootstrap resamples per study.
        warnings: sentences about the plan (few expected errors, a power that is not reachable).
    """

    n: int
    power: float
    target: float
    undefined: float
    expected_errors: tuple[float, float]
    n_sim: int
    n_boot: int
    warnings: tuple[str, ...] = ()


def _kappa_from_cells(c: np.ndarray) -> np.ndarray:
    """Kappa of 2x2 count tables (..., 4) = (both right, a only, b only, both wrong); NaN where undefined."""
    n = c.sum(-1)
    pa, pb = (c[..., 0] + c[..., 1]) / n, (c[..., 0] + c[..., 2]) / n
    po = (c[..., 0] + c[..., 3]) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isclose(pe, 1.0, rtol=0, atol=1e-12), np.nan, (po - pe) / (1 - pe))


def _bootstrap_kappas(rng: np.random.Generator, cells: np.ndarray, n: int, n_sim: int, n_boot: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Simulated studies of ``n`` trials: each study's kappa (S,) and its bootstrap kappas (S, B)."""
    tables = rng.multinomial(n, cells, size=n_sim)  # (S, 4)
    boot = rng.multinomial(n, tables[:, None, :] / n, size=(n_sim, n_boot))  # (S, B, 4)
    return _kappa_from_cells(tables.astype(np.float64)), _kappa_from_cells(boot.astype(np.float64))


def _excludes_zero(k: np.ndarray, kb: np.ndarray) -> np.ndarray:
    """Studies whose kappa is defined and whose 95 % percentile interval of ``kb`` (S, B) excludes 0."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # studies whose every resample is undefined
        lo, hi = np.nanquantile(kb, [0.025, 0.975], axis=1)
    return np.isfinite(k) & np.isfinite(lo) & ((lo > 0) | (hi < 0))


def simulated_power(acc_a: float, acc_b: float, kappa: float, n: int, *, n_sim: int = 1000, n_boot: int = 400,
                    seed: int = 0) -> tuple[float, float]:
    """The share of simulated studies of ``n`` trials whose 95 % percentile-bootstrap interval excludes 0, and
    the share whose kappa is undefined.
    """
    rng = np.random.default_rng(seed)
    k, kb = _bootstrap_kappas(rng, _cells(acc_a, acc_b, kappa), n, n_sim, n_boot)
    return float(_excludes_zero(k, kb).mean()), float(np.isnan(k).mean())


def simulated_difference_power(first: tuple[float, float, float], second: tuple[float, float, float], n: int, *,
                               n_sim: int = 1000, n_boot: int = 400, seed: int = 0) -> tuple[float, float]:
    """The share of simulated pairs of studies (``n`` trials each, independent) whose 95 % percentile-bootstrap
    interval of kappa_1 - kappa_2 excludes 0, and the share with an undefined kappa in either.

    Args:
        first: ``(acc_a, acc_b, kappa)`` of the first pair of observers.
        second: the same for the second pair.
        n: trials per study.
        n_sim: simulated pairs of studies.
        n_boot: bootstrap resamples per study.
        seed: simulation seed.
    """
    rng = np.random.default_rng(seed)
    k1, kb1 = _bootstrap_kappas(rng, _cells(*first), n, n_sim, n_boot)
    k2, kb2 = _bootstrap_kappas(rng, _cells(*second), n, n_sim, n_boot)
    d = k1 - k2
    return float(_excludes_zero(d, kb1 - kb2).mean()), float(np.isnan(d).mean())


def _smallest_n(at: Callable[[int], tuple[float, float]], power: float, n_max: int, what: str
                ) -> tuple[int, float, float]:
    """Double n until ``at(n)`` reaches ``power``, then bisect; returns (n, its power, its undefined share)."""
    lo, hi = 1, 8
    p_hi, u_hi = at(hi)
    while p_hi < power:
        if hi >= n_max:
            raise ValueError(f"no n up to {n_max} reaches a power of {power:g} {what}.")
        lo, hi = hi, min(2 * hi, n_max)
        p_hi, u_hi = at(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        p_mid, u_mid = at(mid)
        if p_mid >= power:
            hi, p_hi, u_hi = mid, p_mid, u_mid
        else:
            lo = mid
    return hi, p_hi, u_hi


def _notes(n: int, accuracies: Sequence[float], undefined: float) -> tuple[str, ...]:
    errors = min(n * (1 - a) for a in accuracies)
    notes = []
    if errors < 10:
        notes.append(f"each observer is expected to make only {errors:.1f} errors in {n} trials: kappa rests "
                     "on very few errors, and the normal approximations behind textbook intervals do not hold.")
    if undefined > 0.01:
        notes.append(f"{100 * undefined:.0f} % of such studies have an undefined kappa (an observer without errors).")
    return tuple(notes)


def samples_for_power(acc_a: float, acc_b: float, kappa: float, *, power: float = 0.8, n_sim: int = 1000,
                      n_boot: int = 400, seed: int = 0, n_max: int = 1_000_000) -> PowerPlan:
    """The smallest n whose simulated studies exclude 0 from kappa's 95 % interval with probability ``power``.

    The search doubles n until the power is reached, then bisects; every n is simulated with the same seed,
    so the plan is reproducible.

    Raises:
        ValueError: kappa is 0 (no n excludes 0), impossible for the accuracies, or the power is not in (0, 1).
    """
    if not 0 < power < 1:
        raise ValueError(f"power must lie strictly between 0 and 1, got {power}.")
    if kappa == 0:
        raise ValueError("kappa 0 is what the interval should exclude: no number of trials plans for it.")
    _cells(acc_a, acc_b, kappa)  # refuses an impossible kappa
    n, p, u = _smallest_n(lambda m: simulated_power(acc_a, acc_b, kappa, m, n_sim=n_sim, n_boot=n_boot, seed=seed),
                          power, n_max, f"for kappa {kappa:g} at accuracies {acc_a:g} and {acc_b:g}")
    return PowerPlan(n=n, power=p, target=power, undefined=u, expected_errors=(n * (1 - acc_a), n * (1 - acc_b)),
                     n_sim=n_sim, n_boot=n_boot, warnings=_notes(n, (acc_a, acc_b), u))


def samples_for_difference(first: tuple[float, float, float], second: tuple[float, float, float], *,
                           power: float = 0.8, n_sim: int = 1000, n_boot: int = 400, seed: int = 0,
                           n_max: int = 1_000_000) -> PowerPlan:
    """The smallest n (trials per pair) at which two pairs of observers tell their kappas apart: the simulated
    95 % percentile-bootstrap interval of kappa_1 - kappa_2 excludes 0 with probability ``power``.

    Args:
        first: ``(acc_a, acc_b, kappa)`` of the first pair.
        second: the same for the second pair.
        power: the probability asked for.
        n_sim: simulated pairs of studies per n.
        n_boot: bootstrap resamples per study.
        seed: simulation seed (the same for every n).
        n_max: the largest n tried.

    Raises:
        ValueError: equal kappas (nothing to tell apart), a kappa impossible for its accuracies, or a power not
            in (0, 1).
    """
    if not 0 < power < 1:
        raise ValueError(f"power must lie strictly between 0 and 1, got {power}.")
    if first[2] == second[2]:
        raise ValueError("the two kappas are equal: no number of trials tells them apart.")
    _cells(*first), _cells(*second)  # refuses an impossible kappa
    n, p, u = _smallest_n(lambda m: simulated_difference_power(first, second, m, n_sim=n_sim, n_boot=n_boot,
                                                               seed=seed),
                          power, n_max, f"to tell kappa {first[2]:g} from {second[2]:g}")
    accuracies = (first[0], first[1], second[0], second[1])
    return PowerPlan(n=n, power=p, target=power, undefined=u,
                     expected_errors=(n * (1 - max(accuracies)), n * (1 - min(accuracies))), n_sim=n_sim,
                     n_boot=n_boot, warnings=_notes(n, accuracies, u))
