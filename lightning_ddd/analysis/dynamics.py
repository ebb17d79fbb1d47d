"""One run's learning dynamics along its rows (paper §2.5), computed row by row.

Everything is computed by :class:`DynamicsAccumulator`, which consumes one row at a time, so a store of
1.28 M samples x 91 rows is analysed in O(N) memory; :func:`summarize_dynamics` feeds it a whole matrix.
The recorder's live summaries use the same accumulator (one source of maths).

Definitions (rows are evaluations; row 0 is normally the untrained network):

* Rows before ``burn_in`` (default 1: the before-training row) are ignored for everything per sample.
* **Forgetting event**: correct at a sample's previous evaluated row and wrong at this one (both at or
  after the burn-in). With no missing cells, that is consecutive rows.
* **Always learned**: correct at every evaluated row from the burn-in on; **never learned**: wrong at
  every such row; **flip-flopping**: at least ``flip_threshold`` forgetting events; **other**: learned
  at some point and forgotten fewer times than the threshold; **unobserved**: never evaluated.
* **First-learned row**: first row (>= burn-in) where correct; **learned-for-good row**: first row of the
  final uninterrupted run of correct rows (-1 if the last evaluated row is wrong).
* Data maps (Swayamdipta et al. 2020): confidence = mean true-class probability, variability = its
  population standard deviation, correctness = fraction of rows correct. AUM (Pleiss et al. 2020) =
  mean margin (target logit minus the largest other logit, from logits).
* Per row: learned (wrong -> correct) and forgotten (correct -> wrong) versus the previous row, kappa
  with the previous row, and predicted-class changes, over samples evaluated in both rows.
"""

from __future__ import annotations

import dataclasses
import enum

import numpy as np

from lightning_ddd.analysis.kappa import stats_from_counts


class Category(enum.IntEnum):
    """Per-sample category of one run's trajectory."""

    ALWAYS_LEARNED = 0
    NEVER_LEARNED = 1
    FLIP_FLOPPING = 2
    OTHER = 3
    UNOBSERVED = 4

    @property
    def key(self) -> str:
        """The name used in JSON, CSV and the explorer (``"in_between"``)."""
        return self.name.lower()

    @property
    def text(self) -> str:
        """The name in prose (``"flip-flopping"``, ``"always learned"``)."""
        return self.name.lower().replace("_", " ").replace("flip flopping", "flip-flopping")

    @classmethod
    def keys(cls) -> np.ndarray:
        """Every member's :attr:`key`, indexable by the member's value (``keys()[labels]``)."""
        return np.array([m.key for m in cls])


@dataclasses.dataclass
class RowStats:
    """Per-row series (length = rows consumed); entries of row 0 that have no predecessor are NaN / 0.

    Attributes:
        accuracy: fraction correct among evaluated samples.
        evaluated: number of samples evaluated.
        learned: wrong at the previous row, correct now.
        forgotten: correct at the previous row, wrong now.
        kappa_prev: error consistency with the previous row.
        pred_changes: samples whose predicted class changed since the previous row (NaN without preds).
        always_learned, never_learned, flip_flopping: fractions of observed samples so far (>= burn-in).
    """

    accuracy: list[float] = dataclasses.field(default_factory=list)
    evaluated: list[int] = dataclasses.field(default_factory=list)
    learned: list[int] = dataclasses.field(default_factory=list)
    forgotten: list[int] = dataclasses.field(default_factory=list)
    kappa_prev: list[float] = dataclasses.field(default_factory=list)
    pred_changes: list[float] = dataclasses.field(default_factory=list)
    always_learned: list[float] = dataclasses.field(default_factory=list)
    never_learned: list[float] = dataclasses.field(default_factory=list)
    flip_flopping: list[float] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Dynamics:
    """Per-sample results of one run (arrays of shape (N,)) and per-row series.

    Attributes:
        category: :class:`Category` values (int8).
        first_learned: first-learned row, -1 if never.
        learned_for_good: learned-for-good row, -1 if none.
        forgetting_events: number of forgetting events.
        rows_correct: number of rows correct (>= burn-in).
        rows_evaluated: number of rows evaluated (>= burn-in).
        correctness: rows_correct / rows_evaluated (data-map correctness; NaN if unobserved).
        confidence: mean true-class probability (NaN without probabilities).
        variability: standard deviation of the true-class probability.
        aum: area under the margin (NaN without margins).
        rows: per-row :class:`RowStats`.
        burn_in: rows ignored per sample.
        flip_threshold: forgetting events that make a sample flip-flopping.
    """

    category: np.ndarray
    first_learned: np.ndarray
    learned_for_good: np.ndarray
    forgetting_events: np.ndarray
    rows_correct: np.ndarray
    rows_evaluated: np.ndarray
    correctness: np.ndarray
    confidence: np.ndarray
    variability: np.ndarray
    aum: np.ndarray
    rows: RowStats
    burn_in: int
    flip_threshold: int

    def category_fractions(self) -> dict[str, float]:
        """Fraction of observed samples in each category."""
        observed = self.category != Category.UNOBSERVED
        total = max(int(observed.sum()), 1)
        return {c.key: float(np.sum(self.category == c)) / total
                for c in Category if c != Category.UNOBSERVED}


class DynamicsAccumulator:
    """Consumes one run's rows one at a time and keeps the per-sample state.

    Args:
        num_samples: N.
        burn_in: rows ignored per sample (default 1 excludes the before-training row).
        flip_threshold: forgetting events for "flip-flopping" (default 1).
    """

    def __init__(self, num_samples: int, *, burn_in: int = 1, flip_threshold: int = 1) -> None:
        if burn_in < 0:
            raise ValueError(f"burn_in must be >= 0, got {burn_in}.")
        if flip_threshold < 1:
            raise ValueError(f"flip_threshold must be >= 1, got {flip_threshold}.")
        n = int(num_samples)
        self.num_samples = n
        self.burn_in = burn_in
        self.flip_threshold = flip_threshold
        self.row_index = 0
        self.rows_evaluated = np.zeros(n, np.int32)
        self.rows_correct = np.zeros(n, np.int32)
        self.forgetting = np.zeros(n, np.int32)
        self.first_learned = np.full(n, -1, np.int32)
        self.streak_start = np.full(n, -1, np.int32)
        self.last_correct = np.full(n, -1, np.int8)  # per sample: -1 unseen, else last evaluated value
        self.prob_sum = np.zeros(n, np.float64)
        self.prob_sq = np.zeros(n, np.float64)
        self.prob_n = np.zeros(n, np.int32)
        self.margin_sum = np.zeros(n, np.float64)
        self.margin_n = np.zeros(n, np.int32)
        self.prev_row: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
        self.rows = RowStats()

    def update(self, correct: np.ndarray, evaluated: np.ndarray | None = None, *, pred: np.ndarray | None = None,
               prob: np.ndarray | None = None, margin: np.ndarray | None = None) -> None:
        """Consume the next row.

        Args:
            correct: (N,) bool.
            evaluated: (N,) bool, samples present in this row (all by default).
            pred: (N,) predicted classes, for predicted-class changes.
            prob: (N,) true-class probabilities, for data maps.
            margin: (N,) margins, for AUM.
        """
        c = np.asarray(correct).astype(bool)
        if c.shape != (self.num_samples,):
            raise ValueError(f"Row has shape {c.shape}, expected ({self.num_samples},).")
        v = np.ones_like(c) if evaluated is None else np.asarray(evaluated).astype(bool)
        r = self.row_index
        self._row_stats(c, v, pred)
        if r >= self.burn_in:
            cv = c & v
            wv = ~c & v
            self.rows_evaluated += v
            self.rows_correct += cv
            self.forgetting += (self.last_correct == 1) & wv
            self.first_learned[(self.first_learned < 0) & cv] = r
            self.streak_start[cv & (self.streak_start < 0)] = r
            self.streak_start[wv] = -1
            self.last_correct[v] = c[v]
            if prob is not None:
                p = np.where(v, np.asarray(prob, np.float64), 0.0)
                ok = v & np.isfinite(p)
                p = np.where(ok, p, 0.0)
                self.prob_sum += p
                self.prob_sq += p * p
                self.prob_n += ok
            if margin is not None:
                m = np.asarray(margin, np.float64)
                ok = v & np.isfinite(m)
                self.margin_sum += np.where(ok, m, 0.0)
                self.margin_n += ok
        self._fractions()
        self.prev_row = (c, v, None if pred is None else np.asarray(pred))
        self.row_index += 1

    def _row_stats(self, c: np.ndarray, v: np.ndarray, pred: np.ndarray | None) -> None:
        rs = self.rows
        nv = int(v.sum())
        rs.evaluated.append(nv)
        rs.accuracy.append(float((c & v).sum()) / nv if nv else float("nan"))
        if self.prev_row is None:
            rs.learned.append(0)
            rs.forgotten.append(0)
            rs.kappa_prev.append(float("nan"))
            rs.pred_changes.append(float("nan"))
            return
        pc, pv, pp = self.prev_row
        both = v & pv
        rs.learned.append(int(np.sum(both & ~pc & c)))
        rs.forgotten.append(int(np.sum(both & pc & ~c)))
        st = stats_from_counts(np.sum(both & pc & c), np.sum(both & pc), np.sum(both & c), np.sum(both))
        rs.kappa_prev.append(float(st.kappa))
        rs.pred_changes.append(float(np.sum(both & (pp != pred))) if pred is not None and pp is not None
                               else float("nan"))

    def categories(self) -> np.ndarray:
        """Current :class:`Category` per sample (int8)."""
        cat = np.full(self.num_samples, Category.OTHER, np.int8)
        cat[self.forgetting >= self.flip_threshold] = Category.FLIP_FLOPPING
        cat[self.rows_correct == 0] = Category.NEVER_LEARNED
        cat[(self.rows_correct == self.rows_evaluated)] = Category.ALWAYS_LEARNED
        cat[self.rows_evaluated == 0] = Category.UNOBSERVED
        return cat

    def _fractions(self) -> None:
        rs = self.rows
        if self.row_index < self.burn_in:
            for series in (rs.always_learned, rs.never_learned, rs.flip_flopping):
                series.append(float("nan"))
            return
        cat = self.categories()
        observed = max(int(np.sum(cat != Category.UNOBSERVED)), 1)
        rs.always_learned.append(float(np.sum(cat == Category.ALWAYS_LEARNED)) / observed)
        rs.never_learned.append(float(np.sum(cat == Category.NEVER_LEARNED)) / observed)
        rs.flip_flopping.append(float(np.sum(cat == Category.FLIP_FLOPPING)) / observed)

    def result(self) -> Dynamics:
        """Return the :class:`Dynamics` of all rows consumed so far."""
        with np.errstate(divide="ignore", invalid="ignore"):
            correctness = np.where(self.rows_evaluated > 0, self.rows_correct / self.rows_evaluated, np.nan)
            mean = np.where(self.prob_n > 0, self.prob_sum / self.prob_n, np.nan)
            var = np.where(self.prob_n > 0, self.prob_sq / self.prob_n - mean**2, np.nan)
            aum = np.where(self.margin_n > 0, self.margin_sum / self.margin_n, np.nan)
        return Dynamics(
            category=self.categories(), first_learned=self.first_learned.copy(),
            learned_for_good=np.where(self.last_correct == 1, self.streak_start, -1).astype(np.int32),
            forgetting_events=self.forgetting.copy(), rows_correct=self.rows_correct.copy(),
            rows_evaluated=self.rows_evaluated.copy(), correctness=correctness, confidence=mean,
            variability=np.sqrt(np.clip(var, 0, None)), aum=aum, rows=self.rows,
            burn_in=self.burn_in, flip_threshold=self.flip_threshold,
        )


def summarize_dynamics(correct: np.ndarray, evaluated: np.ndarray | None = None, *,
                       pred: np.ndarray | None = None, prob: np.ndarray | None = None,
                       margin: np.ndarray | None = None, burn_in: int = 1,
                       flip_threshold: int = 1) -> Dynamics:
    """Compute one run's dynamics from whole (rows, samples) matrices.

    Args:
        correct: (R, N) bool.
        evaluated: (R, N) bool; all evaluated by default.
        pred: optional (R, N) predicted classes.
        prob: optional (R, N) true-class probabilities.
        margin: optional (R, N) margins.
        burn_in: rows ignored per sample (default 1: the before-training row).
        flip_threshold: forgetting events that make a sample flip-flopping.

    Returns:
        :class:`Dynamics`.
    """
    if not isinstance(correct, np.ndarray):
        raise TypeError(f"correct must be a numpy array, got {type(correct).__name__}.")
    if correct.ndim != 2:
        raise ValueError(f"correct must be (rows, samples), got shape {correct.shape}.")
    for name, arr in (("evaluated", evaluated), ("pred", pred), ("prob", prob), ("margin", margin)):
        if arr is not None and np.shape(arr) != correct.shape:
            raise ValueError(f"{name} has shape {np.shape(arr)}, correct has {correct.shape}.")
    acc = DynamicsAccumulator(correct.shape[1], burn_in=burn_in, flip_threshold=flip_threshold)
    for r in range(correct.shape[0]):
        acc.update(correct[r], None if evaluated is None else evaluated[r],
                   pred=None if pred is None else pred[r], prob=None if prob is None else prob[r],
                   margin=None if margin is None else margin[r])
    return acc.result()
