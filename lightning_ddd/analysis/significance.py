"""Is an error consistency more than chance, how large is it, and how many samples does a comparison need?

Definitions follow Klein, Meyen, Brendel, Wichmann and Meding (2025), "Quantifying Uncertainty in Error
Consistency" (arXiv 2507.06645), implemented from the formulas, vectorised over pairs (numpy only):

* **Klein et al.'s test against independent observers.** Under the null the two runs are independent
  binomial observers whose accuracies are unknown: draw p1 ~ Beta(k1, n - k1), p2 ~ Beta(k2, n - k2), then the
  2x2 counts as one multinomial draw with cell probabilities p1 p2, p1 (1 - p2), (1 - p1) p2,
  (1 - p1)(1 - p2) (O(1) per null kappa, never a trial-by-trial simulation). The draw is made as each
  observer's correct count k' ~ Binomial(n, p), shared by every pair a run belongs to, then the both-correct
  count ~ Hypergeometric given both (the same distribution); replicates whose hit Hoeffding's bound makes
  less likely than 1e-15 are not drawn. The p-value is the share of null kappas with |kappa| >= |observed|:
  **our** choice of ``>=`` (a null kappa as extreme as the observed one counts against the null, the usual
  Monte-Carlo convention); Klein et al.'s reference code counts ``>``, which gives smaller p-values when
  kappa takes few values (below about 100 trials). A null table in which both observers are constant and
  equal has kappa 1 by our convention (:mod:`lightning_ddd.analysis.kappa`) and counts as a hit; the share
  of such tables is reported (:attr:`Significance.null_degenerate_share`). A Monte-Carlo p of 0 means
  p < 1 / (draws + 1), and the report says so, before and after correction.
* **An exact test conditional on both accuracies.** Given both marginals, n11 is hypergeometric; the
  two-sided p-value sums the probabilities of every table no more likely than the observed one (Fisher's).
* **Multiple pairs**: Holm's step-down correction (default) or Benjamini-Hochberg's false discovery rate.
* **Estimates**: the less biased kappa n kappa / ((n - 1) + kappa), and the copy probability
  p_copy = kappa f with f = (1 - c_exp) / (1 - (a^2 + (1 - a)^2)), a the higher accuracy.
* **Planning** lives in :mod:`lightning_ddd.analysis.planning` (a stated power, by simulation).
* **Differences of two kappas that share a run** (kappa(base, a) - kappa(base, b)): a paired bootstrap over
  samples.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from lightning_ddd.analysis._checks import as_bool
from lightning_ddd.analysis.kappa import stats_from_counts


# ------------------------------------------------------------------------------------------ counts
def pair_counts(correct: np.ndarray, evaluated: np.ndarray | None = None,
                samples: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The counts of every pair of runs: both correct n11, row run correct na, column run correct nb, common n.

    Args:
        correct: (M, N) bool.
        evaluated: optional (M, N) bool.
        samples: optional (N,) bool subset.

    Returns:
        Four (M, M) float64 arrays.
    """
    c = as_bool(correct, "correct")
    v = np.ones_like(c) if evaluated is None else as_bool(evaluated, "evaluated")
    if samples is not None:
        keep = np.asarray(samples, bool)
        c, v = c[:, keep], v[:, keep]
    cv = (c & v).astype(np.float64)
    vf = v.astype(np.float64)
    n11 = cv @ cv.T
    na = cv @ vf.T
    return n11, na, na.T.copy(), vf @ vf.T


def _kappa(n11: np.ndarray, na: np.ndarray, nb: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.asarray(stats_from_counts(n11, na, nb, n).kappa, dtype=np.float64)


# A null replicate is skipped only when Hoeffding's bound for sampling without replacement makes a hit less
# likely than this; over 10,000 draws for every pair of 100 runs the chance that any skipped replicate would
# have been a hit is below 5e-8, so the p-values equal in distribution those of the full simulation.
SKIP_BELOW = 1e-15


def _null_hits(k1: np.ndarray, k2: np.ndarray, n: np.ndarray, observed: np.ndarray, rng: np.random.Generator,
               skip_below: float = SKIP_BELOW) -> np.ndarray:
    """How many null tables per row have |kappa| >= observed (the hot loop of Klein et al.'s test).

    Under the null, given the correct counts k1', k2' of the two independent observers, the both-correct count
    s11 is hypergeometric (the correct trials of each observer are uniform random subsets, drawn
    independently), so each null table costs one draw. With E = k1' k2' / n, kappa = 2 (s11 - E) / (n (1 - pe)),
    a hit is |s11 - E| >= t with t = |kappa_obs| n (1 - pe) / 2. Replicates with Hoeffding's bound
    2 exp(-2 t^2 / m) below ``skip_below`` (m the smallest of k1', k2', n - k1', n - k2') are counted as misses
    without a draw; kappa is 1 where both observers are constant and equal, as in
    :func:`~lightning_ddd.analysis.kappa.stats_from_counts`.

    Args:
        k1: (P, D) correct counts of the first observer in the null tables.
        k2: (P, D) the same for the second observer.
        n: (P, 1) or scalar number of samples.
        observed: (P,) observed |kappa|.
        rng: random generator for the hypergeometric draws.
        skip_below: the bound under which a replicate is not drawn (0 draws every one).

    Returns:
        (P,) hit counts.
    """
    nf = np.asarray(n, np.float64)
    pe = (k1 * k2 + (nf - k1) * (nf - k2)) / (nf * nf)
    t = (observed[:, None] - 1e-12) * nf * (1 - pe) / 2
    m = np.minimum(np.minimum(k1, k2), np.minimum(nf - k1, nf - k2))
    certain = (t <= 0) | (pe >= 1 - 1e-12)
    draw = ~certain & (m > 0)
    if skip_below > 0:
        draw &= 2 * t * t <= m * np.log(2 / skip_below)
    hits = np.count_nonzero(certain, axis=1)
    if np.count_nonzero(draw) > draw.size // 2:  # most replicates drawn: draw all, no gathers
        a, b = k1.astype(np.int64), k2.astype(np.int64)
        nn = np.broadcast_to(np.asarray(n, np.int64), k1.shape)
        s11 = rng.hypergeometric(b, nn - b, a)
        hit = draw & (np.abs(s11 - a * (b / nn)) >= t)
        return hits + np.count_nonzero(hit, axis=1)
    rows, cols = np.nonzero(draw)
    if rows.size:
        a, b = k1[rows, cols].astype(np.int64), k2[rows, cols].astype(np.int64)
        nn = np.broadcast_to(np.asarray(n, np.int64), k1.shape)[rows, cols]
        s11 = rng.hypergeometric(b, nn - b, a)
        hit = np.abs(s11 - a * (b / nn)) >= t[rows, cols]
        hits += np.bincount(rows[hit], minlength=k1.shape[0])
    return hits


def _workers(workers: int | None) -> int:
    return max(1, min(8, os.cpu_count() or 1)) if workers is None else max(1, int(workers))


def _run_chunks(job: Callable[[int, np.random.Generator], None], n_chunks: int, seed_seq: np.random.SeedSequence,
                workers: int | None) -> None:
    """Run ``job(chunk, rng)`` for every chunk on threads; chunk c always gets the c-th spawned generator, so the
    result does not depend on the number of threads (numpy's draws and arithmetic release the GIL).
    """
    gens = [np.random.default_rng(s) for s in seed_seq.spawn(n_chunks)]
    w = min(_workers(workers), n_chunks)
    if w <= 1:
        for c in range(n_chunks):
            job(c, gens[c])
        return
    with ThreadPoolExecutor(w) as ex:
        for f in [ex.submit(job, c, gens[c]) for c in range(n_chunks)]:
            f.result()


# ------------------------------------------------------------------------------------------ tests
def klein_independence_test(n11: np.ndarray, na: np.ndarray, nb: np.ndarray, n: np.ndarray, *,
                            n_draws: int = 10_000, seed: int = 0, chunk: int = 1_000_000,
                            workers: int | None = None) -> np.ndarray:
    """Klein et al.'s Monte-Carlo test of independent binomial observers, vectorised over pairs and draws.

    Args:
        n11: both-correct counts of each pair (any shape).
        na: correct counts of the first run of each pair (the same shape).
        nb: correct counts of the second run.
        n: common samples of each pair.
        n_draws: null kappas per pair.
        seed: random seed (the result does not depend on ``workers``).
        chunk: null draws per vectorised step (memory bound).
        workers: threads (default: the CPU count, at most 8).

    Returns:
        p-values (the share of null kappas at least as extreme as the observed one), NaN without samples.
    """
    n11, na, nb, n = (np.asarray(x, np.float64) for x in (n11, na, nb, n))
    shape = n11.shape
    n11, na, nb, n = n11.ravel(), na.ravel(), nb.ravel(), n.ravel()
    observed = np.abs(_kappa(n11, na, nb, n))
    hits = np.zeros(n11.size)
    ok = n > 0
    pairs = np.flatnonzero(ok)
    per = max(1, chunk // max(1, n_draws))
    starts = list(range(0, pairs.size, per))

    def job(c: int, rng: np.random.Generator) -> None:
        idx = pairs[starts[c]:starts[c] + per]
        nn = n[idx, None]
        # accuracy posteriors Beta(k, n - k); a run all right or all wrong has a degenerate posterior
        p1 = _beta(rng, np.repeat(na[idx], n_draws), np.repeat(n[idx] - na[idx], n_draws)).reshape(idx.size, -1)
        p2 = _beta(rng, np.repeat(nb[idx], n_draws), np.repeat(n[idx] - nb[idx], n_draws)).reshape(idx.size, -1)
        k1 = rng.binomial(nn.astype(np.int64), p1).astype(np.float64)
        k2 = rng.binomial(nn.astype(np.int64), p2).astype(np.float64)
        hits[idx] = _null_hits(k1, k2, nn, observed[idx], rng)

    _run_chunks(job, len(starts), np.random.SeedSequence(seed), workers)
    p = np.where(ok, hits / max(1, n_draws), np.nan)
    return p.reshape(shape)


def klein_null_kappas(na: float, nb: float, n: int, *, n_draws: int = 10_000, seed: int = 0) -> np.ndarray:
    """Null kappas of one pair under Klein et al.'s independent-observer model (the test's reference
    distribution), drawn as the test draws them: accuracies from their Beta posteriors, each observer's correct
    count from its binomial, then the both-correct count from the hypergeometric given both.
    """
    rng = np.random.default_rng(seed)
    p1 = _beta(rng, np.full(n_draws, float(na)), np.full(n_draws, float(n - na)))
    p2 = _beta(rng, np.full(n_draws, float(nb)), np.full(n_draws, float(n - nb)))
    k1 = rng.binomial(n, p1)
    k2 = rng.binomial(n, p2)
    s11 = rng.hypergeometric(k2, n - k2, k1)
    return _kappa(s11, k1, k2, np.float64(n))


def klein_matrix_test(n11: np.ndarray, k: np.ndarray, n: int, *, n_draws: int = 10_000, seed: int = 0,
                      chunk: int = 1_000_000, workers: int | None = None,
                      skip_below: float = SKIP_BELOW, return_degenerate: bool = False) -> Any:
    """Klein et al.'s test for every pair of M runs evaluated on the same n samples, sharing draws per run.

    Each run's accuracy posterior draw p ~ Beta(k, n - k) and its correct count k' ~ Binomial(n, p) are drawn
    once per null replicate and reused by every pair it belongs to (each pair's null distribution is
    unchanged; only the pairs' p-values become correlated). Per pair and replicate there remains one draw:
    the both-correct count, hypergeometric given k'_i and k'_j, skipped where Hoeffding's bound makes a hit
    less likely than ``skip_below`` (see :func:`_null_hits`).

    Args:
        n11: (M, M) both-correct counts.
        k: (M,) correct counts.
        n: the common number of samples.
        n_draws: null replicates.
        seed: random seed (the result does not depend on ``workers``).
        chunk: pair-replicates per vectorised step.
        workers: threads (default: the CPU count, at most 8).
        skip_below: see :func:`_null_hits` (0 draws every replicate).
        return_degenerate: also return the (M, M) share of null tables in which both observers are constant
            and equal (kappa 1 by convention).

    Returns:
        (M, M) p-values (diagonal NaN), and with ``return_degenerate`` that share.
    """
    k = np.asarray(k, np.float64)
    m = k.size
    out = np.full((m, m), np.nan)
    share = np.full((m, m), np.nan)
    if n <= 0 or m < 2:
        return (out, share) if return_degenerate else out
    seq = np.random.SeedSequence(seed)
    per_run, per_pair = seq.spawn(2)
    rng = np.random.default_rng(per_run)
    p = _beta(rng, np.repeat(k, n_draws), np.repeat(n - k, n_draws)).reshape(m, n_draws)
    kk = rng.binomial(n, p).astype(np.float64)  # (M, D)
    iu, ju = np.triu_indices(m, 1)
    observed = np.abs(_kappa(n11[iu, ju], k[iu], k[ju], np.full(iu.size, float(n))))
    hits = np.zeros(iu.size)
    per = max(1, chunk // n_draws)
    starts = list(range(0, iu.size, per))

    def job(c: int, g: np.random.Generator) -> None:
        sl = slice(starts[c], starts[c] + per)
        hits[sl] = _null_hits(kk[iu[sl]], kk[ju[sl]], np.float64(n), observed[sl], g, skip_below)

    _run_chunks(job, len(starts), per_pair, workers)
    out[iu, ju] = out[ju, iu] = hits / n_draws
    if not return_degenerate:
        return out
    zero, full = (kk == 0).astype(np.float64), (kk == n).astype(np.float64)
    share = (zero @ zero.T + full @ full.T) / n_draws
    np.fill_diagonal(share, np.nan)
    return out, share


def _beta(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.where(a <= 0, 0.0, 1.0)
    both = (a > 0) & (b > 0)
    if both.any():
        out = out.copy()
        out[both] = rng.beta(a[both], b[both])
    return out


def exact_independence_test(n11: np.ndarray, na: np.ndarray, nb: np.ndarray, n: np.ndarray, *,
                            width_sd: float = 40.0) -> np.ndarray:
    """Two-sided exact test of independence given both accuracies (Fisher's, n11 hypergeometric).

    The hypergeometric log-probabilities are built by their recurrence over the support, within
    ``width_sd`` standard deviations of the mean (beyond that each probability is below 1e-300).

    Returns:
        p-values, NaN without samples.
    """
    n11, na, nb, n = (np.asarray(x, np.float64) for x in (n11, na, nb, n))
    shape = n11.shape
    out = np.full(n11.size, np.nan)
    flat = [x.ravel() for x in (n11, na, nb, n)]
    cache: dict[tuple[int, int, int, int], float] = {}
    for i, (x, k1, k2, total) in enumerate(zip(*flat)):
        if total <= 0:
            continue
        key = (int(x), int(k1), int(k2), int(total))
        if key not in cache:
            cache[key] = _fisher_two_sided(*key, width_sd=width_sd)
        out[i] = cache[key]
    return out.reshape(shape)


def _fisher_two_sided(x: int, k1: int, k2: int, n: int, *, width_sd: float) -> float:
    lo, hi = max(0, k1 + k2 - n), min(k1, k2)
    if lo == hi:
        return 1.0
    mean = k1 * k2 / n
    var = k1 * k2 * (n - k1) * (n - k2) / (n * n * max(n - 1, 1))
    half = int(np.ceil(width_sd * np.sqrt(max(var, 1.0))))
    a = min(max(lo, int(mean) - half), x)
    b = max(min(hi, int(mean) + half), x)
    support = np.arange(a, b + 1, dtype=np.float64)
    # log pmf up to a constant, by the ratio p(s + 1) / p(s) = (k1 - s)(k2 - s) / ((s + 1)(n - k1 - k2 + s + 1))
    s = support[:-1]
    with np.errstate(divide="ignore"):
        steps = np.log(k1 - s) + np.log(k2 - s) - np.log(s + 1) - np.log(n - k1 - k2 + s + 1)
    logp = np.concatenate([[0.0], np.cumsum(steps)])
    logp -= logp.max()
    p = np.exp(logp)
    p /= p.sum()
    observed = p[int(x) - a]
    return float(min(1.0, p[p <= observed * (1 + 1e-7)].sum()))


def adjust_pvalues(p: np.ndarray, method: str = "holm") -> np.ndarray:
    """Correct p-values for multiple comparisons.

    Args:
        p: p-values of any shape (NaN ignored). For a symmetric pair matrix pass its upper triangle, or use
            :func:`adjust_pair_matrix`.
        method: ``"holm"`` (family-wise error, step-down) or ``"bh"`` (Benjamini-Hochberg false discovery rate).

    Returns:
        Adjusted p-values, same shape.
    """
    p = np.asarray(p, np.float64)
    flat = p.ravel()
    ok = np.flatnonzero(np.isfinite(flat))
    out = np.full(flat.shape, np.nan)
    m = ok.size
    if m == 0:
        return out.reshape(p.shape)
    order = ok[np.argsort(flat[ok], kind="stable")]
    sorted_p = flat[order]
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * sorted_p))
    elif method == "bh":
        adj = np.minimum.accumulate((sorted_p * m / np.arange(1, m + 1))[::-1])[::-1]
        adj = np.minimum(adj, 1.0)
    else:
        raise ValueError(f"method must be 'holm' or 'bh', got {method!r}.")
    out[order] = adj
    return out.reshape(p.shape)


def adjust_pair_matrix(p: np.ndarray, method: str = "holm") -> np.ndarray:
    """Correct a symmetric (M, M) p-value matrix over its M (M - 1) / 2 distinct pairs."""
    p = np.asarray(p, np.float64)
    m = p.shape[0]
    iu = np.triu_indices(m, 1)
    out = np.full_like(p, np.nan)
    adj = adjust_pvalues(p[iu], method)
    out[iu] = adj
    out[(iu[1], iu[0])] = adj
    return out


# ------------------------------------------------------------------------------------------ estimates
def debiased_kappa(kappa: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The less biased kappa of Klein et al.: n kappa / ((n - 1) + kappa)."""
    kappa, n = np.asarray(kappa, np.float64), np.asarray(n, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return n * kappa / ((n - 1) + kappa)


def copy_probability(kappa: np.ndarray, acc_a: np.ndarray, acc_b: np.ndarray) -> np.ndarray:
    """Klein et al.'s copy probability p_copy = kappa f, f = (1 - c_exp) / (1 - (a^2 + (1 - a)^2)), with a the
    higher of the two accuracies: the probability that the second observer copies the first's decision.
    """
    kappa, a1, a2 = (np.asarray(x, np.float64) for x in (kappa, acc_a, acc_b))
    c_exp = a1 * a2 + (1 - a1) * (1 - a2)
    a = np.maximum(a1, a2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return kappa * (1 - c_exp) / (1 - (a * a + (1 - a) * (1 - a)))


# ------------------------------------------------------------------------------------------ the whole matrix
@dataclasses.dataclass
class Significance:
    """Significance and effect sizes of every pair of runs (each an (M, M) array).

    Attributes:
        kappa, debiased, copy: kappa, the less biased kappa, the copy probability.
        p_klein, p_exact: raw p-values of the two tests against independence.
        p_klein_adj, p_exact_adj: corrected over the distinct pairs by ``method``.
        n: common samples of each pair.
        runs: run names; subset: which samples; method: correction; n_draws, seed: of Klein's test.
    """

    kappa: np.ndarray
    debiased: np.ndarray
    copy: np.ndarray
    p_klein: np.ndarray
    p_exact: np.ndarray
    p_klein_adj: np.ndarray
    p_exact_adj: np.ndarray
    n: np.ndarray
    runs: tuple[str, ...]
    subset: str
    method: str
    n_draws: int
    seed: int
    null_degenerate_share: np.ndarray | None = None

    @property
    def p_floor(self) -> float:
        """The resolution of the Monte-Carlo p-values: a p of 0 means p < 1 / (draws + 1)."""
        return 1.0 / (self.n_draws + 1)


def significance_matrix(correct: np.ndarray, *, evaluated: np.ndarray | None = None,
                        samples: np.ndarray | None = None, runs: Sequence[str] | None = None, n_draws: int = 10_000,
                        seed: int = 0, method: str = "holm", subset: str = "all") -> Significance:
    """Both tests against independence, corrected, and the effect sizes, for every pair of runs."""
    n11, na, nb, n = pair_counts(correct, evaluated, samples)
    st = stats_from_counts(n11, na, nb, n)
    kappa = np.asarray(st.kappa, np.float64)
    iu = np.triu_indices(n11.shape[0], 1)
    degenerate = None
    if evaluated is None:  # every pair shares the samples: share the null draws per run
        p_klein, degenerate = klein_matrix_test(n11, np.diag(n11), int(n[0, 0]) if n.size else 0, n_draws=n_draws,
                                                seed=seed, return_degenerate=True)
    else:
        p_klein = np.full(n11.shape, np.nan)
        upper = klein_independence_test(n11[iu], na[iu], nb[iu], n[iu], n_draws=n_draws, seed=seed)
        p_klein[iu] = p_klein[(iu[1], iu[0])] = upper
    p_exact = np.full(n11.shape, np.nan)
    upper = exact_independence_test(n11[iu], na[iu], nb[iu], n[iu])
    p_exact[iu] = p_exact[(iu[1], iu[0])] = upper
    m = n11.shape[0]
    names = tuple(runs) if runs is not None else tuple(f"run{i}" for i in range(m))
    return Significance(
        kappa=kappa, debiased=debiased_kappa(kappa, n), copy=copy_probability(kappa, st.acc_a, st.acc_b),
        p_klein=p_klein, p_exact=p_exact, p_klein_adj=adjust_pair_matrix(p_klein, method),
        p_exact_adj=adjust_pair_matrix(p_exact, method), n=n, runs=names, subset=subset, method=method,
        n_draws=n_draws, seed=seed, null_degenerate_share=degenerate)
