"""Which images a study shows, and in which order (numpy only).

Experiment 1 (2AFC): pairs of one trivial and one impossible sample. Which samples, by ``selection``:

* ``"paper"`` (default): **the paper's rule**, a seeded uniform draw within the trivial and impossible samples
  at the comparison epoch (strict with tolerance 0), as Meding et al. drew their 149 pairs at random among the
  strict classes of the last epoch;
* ``"extreme"`` (ours, an option): the most extreme samples, trivial ones the runs got right most often over
  all recorded rows and impossible ones least often (ties broken by a seeded draw).

The pairs are a seeded random matching; the trivial image is on the left in exactly half of the main trials
(the extra one of an odd number by a coin), sides and order randomised. A few practice trials come first,
drawn by the same rule from the samples the main trials do not use.

Experiment 2 (ratings): ``per_class`` trivial, in-between (always a uniform draw) and impossible samples by
the same rule, in a seeded random order.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lightning_ddd.analysis.difficulty import Difficulty
from lightning_ddd.analysis.galleries import select_examples
from lightning_ddd.study.documents import Trial


class DesignError(ValueError):
    """The stores cannot give the requested study (too few samples of a kind)."""


@dataclasses.dataclass(frozen=True)
class Pool:
    """The samples a study can draw from.

    Attributes:
        labels: (N,) :class:`~lightning_ddd.analysis.difficulty.Difficulty` of every sample.
        score: (N,) how often the runs got a sample right over all rows (higher: easier), for extremeness.
        usable: (N,) samples with an image (and not a known label error, when those are excluded).
    """

    labels: np.ndarray
    score: np.ndarray
    usable: np.ndarray

    def ids(self, kind: Difficulty) -> np.ndarray:
        """Usable sample ids of one difficulty."""
        return np.flatnonzero((self.labels == kind) & self.usable)


SELECTIONS = ("paper", "extreme")


def _choose(pool: Pool, kind: Difficulty, count: int, seed: int, selection: str) -> np.ndarray:
    """``count`` samples of one difficulty: a seeded uniform draw (the paper's rule) or the most extreme."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}.")
    ids = pool.ids(kind)
    if selection == "paper":
        return select_examples(ids, count, seed=seed)
    rank = pool.score if kind == Difficulty.TRIVIAL else -pool.score
    return select_examples(ids, count, seed=seed, rank=rank)


def _too_few(what: str, have: int, need: int, hint: str) -> DesignError:
    return DesignError(f"Only {have} {what} samples with images are available, but the study needs {need}; {hint}")


def two_afc_trials(pool: Pool, n_trials: int = 149, n_practice: int = 4, seed: int = 0,
                   selection: str = "paper") -> list[Trial]:
    """The trials of Experiment 1 (``selection``: ``"paper"``, the paper's uniform draw, or ``"extreme"``).

    Returns:
        One dict per trial in presentation order: ``trial`` (0-based), ``pair_id``, ``practice``, ``left``,
        ``right`` (sample ids), ``trivial_side`` (``"left"`` / ``"right"``), ``trivial``, ``impossible``.

    Raises:
        DesignError: fewer trivial or impossible samples than pairs.
    """
    need = n_trials + n_practice
    hint = "lower --trials or --practice, or use --tolerance 1"
    for kind, name in ((Difficulty.TRIVIAL, "trivial"), (Difficulty.IMPOSSIBLE, "impossible")):
        have = pool.ids(kind).size
        if have < need:
            raise _too_few(name, have, need, hint)
    rng = np.random.default_rng(seed)
    trivial = _choose(pool, Difficulty.TRIVIAL, need, seed, selection)
    impossible = _choose(pool, Difficulty.IMPOSSIBLE, need, seed, selection)
    # the first drawn (the most extreme) go to the main trials, the others to practice; a seeded matching
    main_t, prac_t = trivial[:n_trials], trivial[n_trials:]
    main_i, prac_i = impossible[:n_trials], impossible[n_trials:]
    main_i = main_i[rng.permutation(main_i.size)]
    prac_i = prac_i[rng.permutation(prac_i.size)]
    left_main = np.zeros(n_trials, bool)
    left_main[: n_trials // 2 + (int(rng.integers(0, 2)) if n_trials % 2 else 0)] = True
    left_main = left_main[rng.permutation(n_trials)]
    left_prac = rng.random(n_practice) < 0.5
    order = rng.permutation(n_trials)
    trials: list[Trial] = []

    def add(t: int, i: int, left: bool, practice: bool, pair: str) -> None:
        trials.append({"trial": len(trials), "pair_id": pair, "practice": practice,
                       "left": int(t if left else i), "right": int(i if left else t),
                       "trivial_side": "left" if left else "right", "trivial": int(t), "impossible": int(i)})

    for j in range(n_practice):
        add(prac_t[j], prac_i[j], bool(left_prac[j]), True, f"practice-{j + 1:02d}")
    for j in order:
        add(main_t[j], main_i[j], bool(left_main[j]), False, f"pair-{j + 1:03d}")
    return trials


def rating_trials(pool: Pool, per_class: int = 100, seed: int = 0, selection: str = "paper") -> list[Trial]:
    """The trials of Experiment 2: one image each, ``trial``, ``sample_id``, ``difficulty``.

    Raises:
        DesignError: fewer samples of a difficulty than ``per_class``.
    """
    chosen = []
    for kind, name in ((Difficulty.TRIVIAL, "trivial"), (Difficulty.IN_BETWEEN, "in_between"),
                       (Difficulty.IMPOSSIBLE, "impossible")):
        have = pool.ids(kind).size
        if have < per_class:
            raise _too_few(name.replace("_", "-"), have, per_class, "lower --per-class or use --tolerance 1")
        ids = (_choose(pool, kind, per_class, seed, selection) if kind != Difficulty.IN_BETWEEN
               else select_examples(pool.ids(kind), per_class, seed=seed))
        chosen += [(int(i), name) for i in ids]
    order = np.random.default_rng(seed).permutation(len(chosen))
    return [{"trial": t, "sample_id": chosen[j][0], "difficulty": chosen[j][1]} for t, j in enumerate(order)]
