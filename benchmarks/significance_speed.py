"""Speed of the error-consistency tests, side by side in one process.

(1) Klein et al.'s test with 10,000 null draws for every pair of 100 runs x 50,000 samples (target < 5 s), on
    runs that share a difficulty (as runs on the same data do: most null replicates are skipped by the
    Hoeffding bound) and on the worst case, 100 mutually independent runs (every replicate is drawn);
(2) the exact conditional test for the same pairs (target < 2 s);
(3) against a trial-by-trial simulation of the null as in the anchor's code (each null kappa draws every
    trial of both observers), timed on a few pairs and extrapolated per null kappa (target >= 1,000x), with
    the p-values of those pairs compared (they must agree within Monte-Carlo error).

(4) the textbook statistics (Fisher's exact test, the exact binomial test, Wilson intervals, the binomial pmf,
    Benjamini-Hochberg) here against scipy's, on the same inputs in the same process: the ratio of times and the
    largest difference of the results (issue 22: scipy would replace them only where it is as fast).

Usage: python benchmarks/significance_speed.py [--runs 100] [--samples 50000] [--draws 10000]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lightning_ddd.analysis.significance import (
    exact_independence_test,
    klein_independence_test,
    klein_matrix_test,
    pair_counts,
)


def trial_by_trial_p(na: float, nb: float, n: int, observed: float, draws: int, rng: np.random.Generator) -> float:
    """The anchor's way: for each null draw, sample both accuracies, then every trial of both observers."""
    hits = 0
    for _ in range(draws):
        p1, p2 = rng.beta(na, n - na), rng.beta(nb, n - nb)
        a, b = rng.random(n) < p1, rng.random(n) < p2
        po = np.mean(a == b)
        pa, pb = a.mean(), b.mean()
        pe = pa * pb + (1 - pa) * (1 - pb)
        hits += abs((po - pe) / (1 - pe)) >= observed - 1e-12
    return hits / draws


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--samples", type=int, default=50_000)
    p.add_argument("--draws", type=int, default=10_000)
    p.add_argument("--reference-draws", type=int, default=3000)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    ease = rng.random(a.samples)
    correct = rng.random((a.runs, a.samples)) < ease  # shared difficulty: pairs far from independence
    # a few pairs near independence too, so the comparison covers p-values away from 0
    correct[1] = rng.random(a.samples) < 0.6
    correct[2] = rng.random(a.samples) < 0.6  # independent of run 1: a p-value away from 0
    n11, na, nb, n = pair_counts(correct)
    pairs = a.runs * (a.runs - 1) // 2
    t = time.perf_counter()
    pk = klein_matrix_test(n11, np.diag(n11), a.samples, n_draws=a.draws, seed=0)
    t_klein = time.perf_counter() - t
    independent = rng.random((a.runs, a.samples)) < rng.uniform(0.5, 0.9, (a.runs, 1))
    i11, _, _, _ = pair_counts(independent)
    t = time.perf_counter()
    klein_matrix_test(i11, np.diag(i11), a.samples, n_draws=a.draws, seed=0)
    t_worst = time.perf_counter() - t
    iu = np.triu_indices(a.runs, 1)
    t = time.perf_counter()
    exact_independence_test(n11[iu], na[iu], nb[iu], n[iu])
    t_exact = time.perf_counter() - t
    print(f"(1) Klein et al.'s test, {a.draws} null draws, {pairs} pairs of {a.runs} runs x {a.samples} samples: "
          f"{t_klein:.2f} s ({t_klein / (pairs * a.draws) * 1e9:.0f} ns per null kappa; target < 5 s)")
    print(f"    worst case, {a.runs} mutually independent runs (no replicate skipped): {t_worst:.2f} s "
          f"({t_worst / (pairs * a.draws) * 1e9:.0f} ns per null kappa; {os.cpu_count()} CPUs)")
    print(f"(2) exact conditional test, {pairs} pairs: {t_exact:.2f} s (target < 2 s)")
    ref_rng = np.random.default_rng(1)
    chosen = [(1, 2), (0, 3)]
    t = time.perf_counter()
    ref = []
    for i, j in chosen:
        st = klein_independence_test(n11[i, j], na[i, j], nb[i, j], n[i, j], n_draws=1, seed=0)  # warm
        del st
        k = n11[i, j]
        po = (2 * k + a.samples - na[i, j] - nb[i, j]) / a.samples
        pa_, pb_ = na[i, j] / a.samples, nb[i, j] / a.samples
        pe = pa_ * pb_ + (1 - pa_) * (1 - pb_)
        ref.append(trial_by_trial_p(na[i, j], nb[i, j], a.samples, abs((po - pe) / (1 - pe)), a.reference_draws,
                                    ref_rng))
    t_ref = (time.perf_counter() - t) / (len(chosen) * a.reference_draws)
    per_ours = t_klein / (pairs * a.draws)
    print(f"(3) trial-by-trial null: {t_ref * 1e6:.0f} us per null kappa vs {per_ours * 1e9:.0f} ns here: "
          f"{t_ref / per_ours:,.0f}x (target >= 1,000x)")
    for (i, j), r in zip(chosen, ref):
        ours = pk[i, j]
        se = np.sqrt(max(r * (1 - r), 1 / a.reference_draws) / a.reference_draws
                     + max(ours * (1 - ours), 1 / a.draws) / a.draws)
        print(f"    pair ({i}, {j}): p = {ours:.4f} here, {r:.4f} trial by trial "
              f"(difference {abs(ours - r) / se:.1f} Monte-Carlo standard errors of the two)")

    against_scipy(n11[iu], na[iu], nb[iu], n[iu], rng)


def _timed(f: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def against_scipy(n11: np.ndarray, na: np.ndarray, nb: np.ndarray, n: np.ndarray, rng: np.random.Generator) -> None:
    """(4): each textbook statistic here and in scipy, timed side by side, and their largest difference."""
    from scipy import stats

    from lightning_ddd.analysis.difficulty import binomial_reference
    from lightning_ddd.analysis.significance import adjust_pvalues
    from lightning_ddd.study.score import binomial_p_value, wilson_interval

    def fisher_scipy() -> np.ndarray:
        return np.array([stats.fisher_exact([[int(x), int(a - x)], [int(b - x), int(t - a - b + x)]]).pvalue
                         for x, a, b, t in zip(n11, na, nb, n)])

    ks = [int(k) for k in rng.integers(0, 150, 2000)]  # 2,000 observers of 149 trials
    p = rng.random(n11.size)
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        (f"Fisher's exact test, {n11.size} pairs", lambda: exact_independence_test(n11, na, nb, n), fisher_scipy),
        ("exact binomial test, 2,000 observers", lambda: [binomial_p_value(k, 149) for k in ks],
         lambda: [stats.binomtest(k, 149).pvalue for k in ks]),
        ("Wilson interval, 2,000 observers", lambda: [wilson_interval(k, 149) for k in ks],
         lambda: [tuple(stats.binomtest(k, 149).proportion_ci(method="wilson")) for k in ks]),
        ("binomial pmf, M = 100, 2,000 times", lambda: [binomial_reference(100, 0.7) for _ in range(2000)],
         lambda: [stats.binom.pmf(np.arange(101), 100, 0.7) for _ in range(2000)]),
        (f"Benjamini-Hochberg, {p.size} p-values, 200 times", lambda: [adjust_pvalues(p, "bh") for _ in range(200)],
         lambda: [stats.false_discovery_control(p, method="bh") for _ in range(200)]),
    ]
    print("(4) textbook statistics here against scipy (time here / time in scipy; largest difference):")
    for name, ours, theirs in cases:
        t_ours, a = _timed(ours)
        t_scipy, b = _timed(theirs)
        diff = float(np.nanmax(np.abs(np.asarray(a, float) - np.asarray(b, float))))
        print(f"    {name}: {t_ours:.3f} s here, {t_scipy:.3f} s in scipy: {t_ours / t_scipy:.2g}x; "
              f"largest difference {diff:.1e}")


if __name__ == "__main__":
    main()
