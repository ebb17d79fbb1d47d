"""Which samples to show: the rules that pick example images for the report's galleries and W&B's table, and
per-class shares (numpy only).

One rule serves every place a sample is shown as an example, so the report and the live dashboard agree:

* a group without an order (trivial, in-between, impossible, always learned, never learned) is shown as a
  seeded uniform draw of ``k`` of its samples, in the order drawn;
* flip-flopping samples are shown most forgotten first (forgetting events, descending), ties broken by the
  same seeded draw.

The seed and the rule are returned with the selection so a page can state how it was chosen.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lightning_ddd.analysis.difficulty import Difficulty, DifficultyResult
from lightning_ddd.analysis.dynamics import Category

GALLERY_SEED = 0
"""The default seed of every example draw (report and W&B)."""


@dataclasses.dataclass(frozen=True)
class Selection:
    """Examples of one group.

    Attributes:
        name: the group (``trivial``, ``in_between``, ``impossible``, ``always_learned``, ``never_learned``,
            ``flip_flopping``).
        ids: the chosen sample ids, in the order shown.
        total: samples in the group.
        rule: how they were chosen, in words.
    """

    name: str
    ids: np.ndarray
    total: int
    rule: str


def select_examples(candidates: np.ndarray, k: int, *, seed: int = GALLERY_SEED,
                    rank: np.ndarray | None = None) -> np.ndarray:
    """``k`` of ``candidates`` (sample ids): a seeded uniform draw, or the ``k`` highest ``rank`` values
    (indexed by sample id) with ties in the order of that draw.

    Args:
        candidates: sample ids of the group.
        k: how many (all when the group is smaller).
        seed: the draw's seed.
        rank: optional (N,) score, highest first.

    Returns:
        The chosen ids, in the order shown.
    """
    candidates = np.asarray(candidates, np.int64)
    order = np.random.default_rng(seed).permutation(candidates.size)
    drawn = candidates[order]
    if rank is not None:
        drawn = drawn[np.argsort(-np.asarray(rank, np.float64)[drawn], kind="stable")]
    return drawn[:max(0, k)]


def difficulty_galleries(difficulty: DifficultyResult, k: int, *, keep: np.ndarray | None = None,
                         seed: int = GALLERY_SEED) -> list[Selection]:
    """Examples of trivial, in-between and impossible samples (across runs), ``keep`` limiting the pool."""
    keep = np.ones(difficulty.labels.size, bool) if keep is None else keep
    out = []
    for name, label in (("trivial", Difficulty.TRIVIAL), ("in_between", Difficulty.IN_BETWEEN),
                        ("impossible", Difficulty.IMPOSSIBLE)):
        mask = difficulty.labels == label
        ids = np.flatnonzero(mask & keep)
        out.append(Selection(name, select_examples(ids, k, seed=seed), int(ids.size),
                             f"a uniform draw of {min(k, ids.size)} of {ids.size} (seed {seed})"))
    return out


def dynamics_galleries(category: np.ndarray, forgetting_events: np.ndarray, k: int, *,
                       seed: int = GALLERY_SEED) -> list[Selection]:
    """Examples of always learned, never learned (uniform draws) and flip-flopping samples (most forgetting
    events first) of one run.
    """
    out = []
    for cat in (Category.ALWAYS_LEARNED, Category.NEVER_LEARNED, Category.FLIP_FLOPPING):
        ids = np.flatnonzero(category == cat)
        flip = cat == Category.FLIP_FLOPPING
        chosen = select_examples(ids, k, seed=seed, rank=forgetting_events if flip else None)
        rule = (f"the {min(k, ids.size)} of {ids.size} with the most forgetting events (ties: seed {seed})" if flip
                else f"a uniform draw of {min(k, ids.size)} of {ids.size} (seed {seed})")
        out.append(Selection(cat.key, chosen, int(ids.size), rule))
    return out


def hard_samples(category: np.ndarray, forgetting_events: np.ndarray, k: int, *,
                 seed: int = GALLERY_SEED) -> np.ndarray:
    """The most forgettable samples, at most ``k``, as W&B's hard-samples table lists them.

    Never-learned samples first (Toneva et al. count them as forgotten infinitely often), drawn as the
    report's never-learned gallery; then flip-flopping samples by forgetting events, as the report's
    flip-flopping gallery. At most half the rows go to never-learned samples when there are flip-floppers.
    """
    galleries = {s.name: s for s in dynamics_galleries(category, forgetting_events, k, seed=seed)}
    never, flip = galleries["never_learned"].ids, galleries["flip_flopping"].ids
    n_never = min(len(never), max(k - len(flip), k // 2))
    return np.concatenate([never[:n_never], flip[: k - n_never]])[:k]


@dataclasses.dataclass(frozen=True)
class ClassShares:
    """Per class: samples, the share of them impossible, and the share of them known label errors.

    Attributes:
        classes: class indices with at least one sample, (C',).
        samples: samples per class.
        impossible: share of the class's samples that are impossible.
        label_errors: share of the class's samples that are label errors (NaN without a mask).
    """

    classes: np.ndarray
    samples: np.ndarray
    impossible: np.ndarray
    label_errors: np.ndarray

    def top(self, by: str, k: int) -> np.ndarray:
        """Positions (into ``classes``) of the ``k`` classes with the largest share ``by``
        (``"impossible"`` or ``"label_errors"``), ties by class index.
        """
        values = np.nan_to_num(getattr(self, by), nan=-1.0)
        return np.lexsort((self.classes, -values))[:k]


def class_shares(targets: np.ndarray, labels: np.ndarray, label_errors: np.ndarray | None = None,
                 keep: np.ndarray | None = None) -> ClassShares:
    """Per-class share of impossible samples and of label errors.

    Args:
        targets: (N,) class per sample (-1: unknown, left out).
        labels: (N,) difficulty labels (:class:`~lightning_ddd.analysis.difficulty.Difficulty`).
        label_errors: optional (N,) label-error mask.
        keep: optional (N,) samples to count.
    """
    targets = np.asarray(targets, np.int64)
    ok = (targets >= 0) & (np.asarray(labels) < 3)
    if keep is not None:
        ok &= keep
    size = int(targets[ok].max()) + 1 if ok.any() else 0
    samples = np.bincount(targets[ok], minlength=size)
    imp = np.bincount(targets[ok], weights=(np.asarray(labels)[ok] == Difficulty.IMPOSSIBLE).astype(float),
                      minlength=size)
    if label_errors is not None:
        le = np.bincount(targets[ok], weights=np.asarray(label_errors, bool)[ok].astype(float), minlength=size)
    else:
        le = np.full(size, np.nan)
    present = np.flatnonzero(samples)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ClassShares(present, samples[present], imp[present] / samples[present], le[present] / samples[present])
