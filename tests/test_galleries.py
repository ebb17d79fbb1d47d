"""The example-selection rules shared by the report's galleries and W&B's hard-samples table, and per-class
shares, against plain loops."""

from __future__ import annotations

import numpy as np

from lightning_ddd.analysis.difficulty import Difficulty
from lightning_ddd.analysis.dynamics import Category
from lightning_ddd.analysis.galleries import class_shares, dynamics_galleries, hard_samples, select_examples


def test_selection_is_seeded_and_ranked_with_ties_in_draw_order():
    cand = np.arange(100, 160)
    a = select_examples(cand, 10, seed=3)
    np.testing.assert_array_equal(a, select_examples(cand, 10, seed=3))
    assert not np.array_equal(a, select_examples(cand, 10, seed=4))
    assert set(a) <= set(cand) and len(set(a)) == 10
    rank = np.zeros(200)
    rank[cand] = cand % 3  # many ties
    top = select_examples(cand, 25, seed=3, rank=rank)
    drawn = select_examples(cand, 60, seed=3)
    want = [i for r in (2, 1, 0) for i in drawn if rank[i] == r][:25]  # by rank, ties in the draw's order
    assert top.tolist() == want


def test_hard_samples_are_the_galleries_never_learned_then_flip_flopping():
    rng = np.random.default_rng(0)
    cat = rng.integers(0, 4, 500).astype(np.int8)
    fe = rng.integers(0, 9, 500)
    g = {s.name: s for s in dynamics_galleries(cat, fe, 20)}
    hard = hard_samples(cat, fe, 20)
    assert hard[:10].tolist() == g["never_learned"].ids[:10].tolist()
    assert hard[10:].tolist() == g["flip_flopping"].ids[:10].tolist()
    assert all(cat[i] == Category.FLIP_FLOPPING for i in g["flip_flopping"].ids)
    assert list(fe[g["flip_flopping"].ids]) == sorted(fe[cat == Category.FLIP_FLOPPING], reverse=True)[:20]


def test_class_shares_equal_a_loop():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 7, 400)
    labels = rng.integers(0, 4, 400)
    errors = rng.random(400) < 0.1
    cs = class_shares(targets, labels, errors)
    for j, c in enumerate(cs.classes):
        mine = (targets == c) & (labels != Difficulty.UNOBSERVED)
        assert cs.samples[j] == mine.sum()
        assert np.isclose(cs.impossible[j], (labels[mine] == Difficulty.IMPOSSIBLE).mean())
        assert np.isclose(cs.label_errors[j], errors[mine].mean())
    top = cs.top("impossible", 3)
    assert list(cs.impossible[top]) == sorted(cs.impossible, reverse=True)[:3]
