"""The analysis against reference implementations: sklearn, plain Python loops, scipy, hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import binom
from sklearn.metrics import cohen_kappa_score

from lightning_ddd.analysis import (
    Category,
    Difficulty,
    compare_to_binomial,
    condition_consistency,
    consistency_plus_n,
    consistency_to_base,
    count_correct,
    error_consistency,
    label_error_shares,
    pairwise_consistency,
    summarize_difficulty,
    summarize_dynamics,
)
from lightning_ddd.analysis.consistency import bootstrap_kappa, resample_indices
from lightning_ddd.analysis.difficulty import classify_difficulty, k_from_fractions
from lightning_ddd.analysis.dynamics import DynamicsAccumulator
from lightning_ddd.analysis.kappa import consistency_matrix

bools = st.integers(2, 60).flatmap(lambda n: st.tuples(arrays(bool, n), arrays(bool, n)))


# ------------------------------------------------------------------ kappa
@given(bools)
@settings(max_examples=200, deadline=None)
def test_kappa_equals_sklearn_symmetric_and_within_bounds(pair):
    a, b = pair
    s = error_consistency(a, b)
    ref = cohen_kappa_score(a, b)
    if np.isnan(ref):  # both constant and equal: the literature's 1.0
        assert a.all() == b.all() and (a == b).all() and s.kappa == 1.0
    else:
        assert s.kappa == pytest.approx(ref, abs=1e-12)
    assert error_consistency(b, a).kappa == pytest.approx(float(s.kappa), abs=1e-12, nan_ok=True)
    assert s.kappa_min - 1e-9 <= s.kappa <= s.kappa_max + 1e-9
    if a.any() and not a.all():
        assert error_consistency(a, a.copy()).kappa == pytest.approx(1.0)


def test_kappa_bounds_example_from_the_paper():
    a = np.array([1] * 7 + [0] * 3, bool)
    b = np.array([1] * 7 + [0] * 3, bool)
    s = error_consistency(a, b)
    assert s.expected == pytest.approx(0.58)
    assert s.kappa_min == pytest.approx(-0.4286, abs=1e-4) and s.kappa_max == pytest.approx(1.0)


def test_kappa_edge_cases():
    ones, zeros = np.ones(5, bool), np.zeros(5, bool)
    assert error_consistency(ones, ones).kappa == 1.0  # sklearn: NaN
    assert error_consistency(ones, zeros).kappa == 0.0  # c_exp = 0, c_obs = 0
    empty = error_consistency(ones, ones, valid=zeros)
    assert np.isnan(empty.kappa) and empty.n == 0
    with pytest.raises(TypeError):
        error_consistency([1, 0], [1, 0])
    with pytest.raises(ValueError, match="0/1"):
        error_consistency(np.array([2, 0]), np.array([1, 0]))


def test_matrix_equals_pairwise_loop_with_missing_samples():
    rng = np.random.default_rng(0)
    c = rng.random((6, 500)) < 0.7
    ev = rng.random((6, 500)) < 0.9
    m = consistency_matrix(c, evaluated=ev)
    for i in range(6):
        for j in range(6):
            both = ev[i] & ev[j]
            ref = cohen_kappa_score(c[i][both], c[j][both]) if i != j else 1.0
            assert m.kappa[i, j] == pytest.approx(ref, abs=1e-9)
    full = consistency_matrix(c)
    assert full.kappa[1, 2] == pytest.approx(cohen_kappa_score(c[1], c[2]))


# ------------------------------------------------------------------ dynamics
def loop_dynamics(correct, evaluated, burn_in, flip_threshold):
    """The obvious per-sample loop."""
    r_, n = correct.shape
    out = []
    for i in range(n):
        rows = [r for r in range(burn_in, r_) if evaluated[r, i]]
        vals = [bool(correct[r, i]) for r in rows]
        forget = sum(1 for a, b in zip(vals, vals[1:]) if a and not b)
        first = next((r for r, v in zip(rows, vals) if v), -1)
        good = -1
        if vals and vals[-1]:
            j = len(vals) - 1
            while j > 0 and vals[j - 1]:
                j -= 1
            good = rows[j]
        if not vals:
            cat = Category.UNOBSERVED
        elif all(vals):
            cat = Category.ALWAYS_LEARNED
        elif not any(vals):
            cat = Category.NEVER_LEARNED
        elif forget >= flip_threshold:
            cat = Category.FLIP_FLOPPING
        else:
            cat = Category.OTHER
        out.append((cat, first, good, forget, sum(vals), len(vals)))
    return out


@given(st.integers(1, 8), st.integers(1, 40), st.integers(0, 2), st.integers(1, 3), st.integers(0, 10_000),
       st.booleans())
@settings(max_examples=150, deadline=None)
def test_dynamics_equal_a_plain_loop(rows, n, burn_in, flip, seed, missing):
    rng = np.random.default_rng(seed)
    c = rng.random((rows, n)) < 0.6
    ev = rng.random((rows, n)) < 0.8 if missing else np.ones((rows, n), bool)
    d = summarize_dynamics(c, ev, burn_in=burn_in, flip_threshold=flip)
    for i, (cat, first, good, forget, nc, ne) in enumerate(loop_dynamics(c, ev, burn_in, flip)):
        assert d.category[i] == cat
        assert d.first_learned[i] == first
        assert d.learned_for_good[i] == good
        assert d.forgetting_events[i] == forget
        assert d.rows_correct[i] == nc and d.rows_evaluated[i] == ne


def test_per_row_series_and_data_maps():
    rng = np.random.default_rng(1)
    c = rng.random((7, 300)) < 0.6
    pred = rng.integers(0, 5, (7, 300))
    prob = rng.random((7, 300))
    margin = rng.normal(size=(7, 300))
    d = summarize_dynamics(c, pred=pred, prob=prob, margin=margin, burn_in=1)
    for r in range(1, 7):
        assert d.rows.learned[r] == np.sum(~c[r - 1] & c[r])
        assert d.rows.forgotten[r] == np.sum(c[r - 1] & ~c[r])
        assert d.rows.kappa_prev[r] == pytest.approx(cohen_kappa_score(c[r - 1], c[r]))
        assert d.rows.pred_changes[r] == np.sum(pred[r - 1] != pred[r])
        assert d.rows.accuracy[r] == pytest.approx(c[r].mean())
    np.testing.assert_allclose(d.confidence, prob[1:].mean(0))
    np.testing.assert_allclose(d.variability, prob[1:].std(0), atol=1e-9)
    np.testing.assert_allclose(d.aum, margin[1:].mean(0))
    np.testing.assert_allclose(d.correctness, c[1:].mean(0))
    frac = d.category_fractions()
    assert frac["always_learned"] == pytest.approx(np.mean(c[1:].all(0)))
    assert d.rows.always_learned[-1] == pytest.approx(frac["always_learned"])


@given(st.integers(2, 8), st.integers(1, 30), st.integers(0, 1000))
@settings(max_examples=50, deadline=None)
def test_row_by_row_updates_equal_the_whole_matrix(rows, n, seed):
    """Feeding rows one at a time, interleaving result() calls, gives the whole-matrix answer."""
    rng = np.random.default_rng(seed)
    c = rng.random((rows, n)) < 0.5
    whole = summarize_dynamics(c)
    acc = DynamicsAccumulator(n)
    for r in range(rows):
        acc.update(c[r])
        acc.result()
    inc = acc.result()
    for name in ("category", "first_learned", "learned_for_good", "forgetting_events", "rows_correct"):
        np.testing.assert_array_equal(getattr(inc, name), getattr(whole, name))


# ------------------------------------------------------------------ difficulty
def test_difficulty_by_count_and_refusals():
    k = np.array([0, 1, 2, 3, 4, 5, -1])
    np.testing.assert_array_equal(classify_difficulty(k, 5, tolerance=1),
                                  [2, 2, 1, 1, 0, 0, Difficulty.UNOBSERVED])
    np.testing.assert_array_equal(classify_difficulty(k[:-1], 5), [2, 1, 1, 1, 1, 0])
    with pytest.raises(ValueError, match="at least 3 distinct runs"):
        classify_difficulty(np.array([0, 1, 2]), 2)
    with pytest.raises(ValueError, match="at least 5"):
        classify_difficulty(np.array([0, 1]), 4, tolerance=1)
    with pytest.raises(TypeError, match="integer"):
        classify_difficulty(np.array([0.5]), 3)
    c = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 0]], bool)
    np.testing.assert_array_equal(count_correct(c), [3, 2, 0])
    ev = np.ones_like(c)
    ev[1, 2] = False
    np.testing.assert_array_equal(count_correct(c, ev), [3, 2, -1])


def test_empty_in_between_and_binomial_reference():
    k = np.array([0, 0, 4, 4, 4])
    r = summarize_difficulty(k, 4)
    assert r.counts["in_between"] == 0 and not r.in_between.any()
    cmp = compare_to_binomial(k, 4)
    np.testing.assert_allclose(cmp.binomial, binom.pmf(np.arange(5), 4, 0.6))
    assert cmp.binomial.sum() == pytest.approx(1)
    assert cmp.total_variation == pytest.approx(0.5 * np.abs(cmp.observed - cmp.binomial).sum())
    np.testing.assert_allclose(cmp.pure_ddd, [0.4, 0, 0, 0, 0.6])


def test_label_error_shares():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    le = np.array([0, 0, 1, 0, 1, 1, 0])
    s = label_error_shares(labels, le)
    assert s.share_within == {"trivial": 0.0, "in_between": 0.5, "impossible": pytest.approx(2 / 3)}
    assert s.share_of_errors["impossible"] == pytest.approx(2 / 3) and s.total_errors == 3


def test_k_from_fractions_refuses_wrong_m():
    np.testing.assert_array_equal(k_from_fractions(np.array([0, 1 / 11, 1]), 11), [0, 1, 11])
    with pytest.raises(ValueError, match="multiples of 1/10"):
        k_from_fractions(np.array([1 / 11]), 10)


# ------------------------------------------------------------------ bootstrap, base, conditions
def test_bootstrap_equals_sklearn_on_the_same_resamples():
    rng = np.random.default_rng(0)
    c = rng.random((4, 300)) < 0.7
    boot = bootstrap_kappa(c, n_boot=30, seed=5)
    idx = np.concatenate(list(resample_indices(300, 30, 5)))
    for b in range(30):
        for i in range(4):
            for j in range(i + 1, 4):
                assert boot[b, i, j] == pytest.approx(cohen_kappa_score(c[i][idx[b]], c[j][idx[b]]), abs=1e-9)


def test_pairwise_consistency_intervals_and_one_subset():
    rng = np.random.default_rng(2)
    difficulty = rng.random(2000)
    c = rng.random((5, 2000)) < difficulty  # shared difficulty: positive kappa
    r = pairwise_consistency(c, n_boot=300, runs=list("abcde"))
    assert (r.ci_low[0, 1] < r.kappa[0, 1] < r.ci_high[0, 1]) and r.kappa[0, 1] > 0.2
    k = count_correct(c)
    d = summarize_difficulty(k, 5)
    sub = pairwise_consistency(c, samples=d.in_between, n_boot=100, subset="in-between")
    assert sub.n_samples == d.counts["in_between"]
    assert sub.kappa[0, 1] == pytest.approx(cohen_kappa_score(c[0][d.in_between], c[1][d.in_between]))
    assert sub.kappa[0, 1] < r.kappa[0, 1]  # removing trivial and impossible lowers consistency


def test_consistency_to_base_and_plus_n():
    rng = np.random.default_rng(3)
    c = rng.random((3, 6, 200)) < 0.6
    kb = consistency_to_base(c, base=1)
    for m in range(3):
        for r in range(6):
            want = 1.0 if m == 1 else cohen_kappa_score(c[m, r], c[1, r])
            assert kb[m, r] == pytest.approx(want)
    p2 = consistency_plus_n(c[0], 2)
    assert p2.shape == (4,)
    assert p2[1] == pytest.approx(cohen_kappa_score(c[0, 3], c[0, 1]))


def test_conditions_never_pair_a_run_with_itself():
    kappa = np.array([[1, .5, .2, .3], [.5, 1, .4, .1], [.2, .4, 1, .9], [.3, .1, .9, 1]])
    cc = condition_consistency(kappa, ["A", "A", "B", "B"])
    assert cc.conditions == ("A", "B")
    assert cc.mean[0, 0] == pytest.approx(.5) and cc.n_pairs[0, 0] == 1
    assert cc.mean[0, 1] == pytest.approx(np.mean([.2, .3, .4, .1])) and cc.n_pairs[0, 1] == 4
    single = condition_consistency(kappa[:3, :3], ["A", "B", "C"])
    assert np.isnan(single.mean[0, 0])  # a condition of one run has no pair with itself
    assert single.mean[0, 1] == pytest.approx(.5)
    assert math.isnan(single.std_error[0, 1])
