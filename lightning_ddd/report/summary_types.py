"""The types of ``summary.json``, the report's JSON document: what :func:`~lightning_ddd.report.summary.summarize`
and the report's sections write, and what the page, the CLI and the demo read.

Values are plain JSON (lists for arrays, ``None`` for non-finite numbers). A matrix is a list of rows indexed
like ``runs`` (run ``i`` against run ``j``); its diagonal and undefined entries are ``None``. The meaning of
each top-level key is in :data:`lightning_ddd.report.summary.SCHEMA`, which the tests hold to these types.
"""

# No ``from __future__ import annotations``: the annotations are evaluated here, so that ``NotRequired`` is seen at
# class creation on Python 3.10 too (typing_extensions' TypedDict) and the types can be checked at run time.
from typing_extensions import NotRequired, TypedDict

Matrix = list[list[float | None]]
"""A (runs x runs) matrix of numbers, ``None`` where undefined."""


class ComparisonRow(TypedDict):
    """Which row of each run is compared."""

    epoch: float | None
    epochs: dict[str, float | None]
    how: str
    per_run_rows: str


class Coverage(TypedDict):
    """How many samples each run evaluated, per row and at the comparison row."""

    n_samples: int
    evaluated_per_row: dict[str, list[int]]
    evaluated_at_comparison: dict[str, int]


class RunDynamics(TypedDict):
    """One run's rows up to the comparison epoch."""

    epochs: list[float]
    accuracy: list[float]
    category_fractions: dict[str, float]
    mean_forgetting_events: float
    learned: list[int]
    forgotten: list[int]
    kappa_prev: list[float | None]
    pred_changes: list[float | None]  # None for the first row


class Reference(TypedDict):
    """The runs whose correct counts k define difficulty."""

    reference_runs: list[str]
    n_reference_runs: int
    own: bool


class Binomial(TypedDict):
    """The k histogram against independent runs of equal difficulty (the paper's Figure 2)."""

    observed: list[float]
    binomial: list[float]
    pure_ddd: list[float]
    mean_accuracy: float
    total_variation: float
    excess_extremes: float


class DifficultyShares(TypedDict):
    """Trivial, in-between and impossible samples at one tolerance."""

    counts: dict[str, int]
    fractions: dict[str, float]
    mean_accuracy: float | None
    tolerance: int
    runs: list[str]
    row: str | None


class Pairs(TypedDict):
    """Pairwise error consistency on one subset of samples."""

    runs: list[str]
    row: str | None
    subset: str
    tolerance: int | None
    n_samples: int
    n_boot: int
    confidence: float
    kappa: Matrix
    ci_low: Matrix
    ci_high: Matrix
    std_error: Matrix
    degenerate_share: Matrix
    observed: Matrix
    expected: Matrix
    kappa_min: Matrix
    kappa_max: Matrix


class Significance(TypedDict, total=False):
    """Tests of each pair's kappa against independent errors (exact, and Klein et al.'s when drawn)."""

    method: str
    n_draws: int
    p_exact: Matrix
    p_exact_adj: Matrix
    debiased_kappa: Matrix
    copy_probability: Matrix
    n: Matrix
    chance: list[list[bool]]
    p_klein: Matrix
    p_klein_adj: Matrix
    p_klein_floor: float
    null_degenerate_share: Matrix


class LabelErrors(TypedDict):
    """How known label errors fall into the difficulty classes."""

    share_within: dict[str, float]
    share_of_errors: dict[str, float]
    counts: dict[str, int]
    total_errors: int


class ConditionMeans(TypedDict):
    """Mean kappa between conditions over their pairs of runs."""

    conditions: list[str]
    mean: Matrix
    std_error: Matrix
    n_pairs: list[list[int]]


class Difference(TypedDict):
    """Two conditions' mean kappa with the base run, and their difference."""

    a: str
    b: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    p_adj: float | None


class ConditionDifferences(TypedDict):
    """Paired-bootstrap differences of conditions' kappa with the base condition, per subset."""

    base: str
    method: str
    n_boot: int
    pairs: dict[str, list[Difference]]


class ToBase(TypedDict):
    """Kappa with the base run per common epoch (the paper's Figure 3): ``kappa[run][epoch]``, and the
    intervals at the last common epoch, per run.
    """

    epochs: list[float]
    kappa: Matrix
    ci_low_last: list[float | None]
    ci_high_last: list[float | None]


class PlusEpochs(TypedDict, total=False):
    """The base run against itself ``n`` epochs later."""

    n: float
    epoch: float
    kappa_all: float | None
    n_all: int
    kappa_in_between: float | None
    n_in_between: int


class DifferentData(TypedDict, total=False):
    """The two runs trained on disjoint data."""

    condition: str
    runs: list[str]
    kappa_all: float | None
    kappa_in_between: float | None
    ci_all: list[float | None]
    ci_in_between: list[float | None]


class Figure(TypedDict):
    """One figure file pair and its caption."""

    name: str
    png: str
    svg: NotRequired[str]  # absent when the SVG would be too large for the page
    caption: str


class Summary(TypedDict, total=False):
    """``summary.json``: see :data:`lightning_ddd.report.summary.SCHEMA` for each key's meaning."""

    split: str
    runs: list[str]
    n_runs: int
    n_samples: int
    base: str
    tolerance: int
    notes: list[str]
    label_errors_excluded: int
    kind: str
    run_kinds: dict[str, str]
    row: str | None
    comparison: ComparisonRow
    coverage: Coverage
    per_run: dict[str, RunDynamics]
    k: Reference
    binomial: Binomial
    difficulty: DifficultyShares
    all_but_one: DifficultyShares
    consistency: dict[str, Pairs]
    significance: dict[str, Significance]
    label_errors: LabelErrors
    conditions: dict[str, ConditionMeans]
    condition_differences: ConditionDifferences
    to_base: ToBase
    plus_epochs: list[PlusEpochs]
    different_data: DifferentData
    per_sample_source: dict[str, str | None]
    class_names: bool
    images: dict[str, str | None]
    galleries: dict[str, object]
    class_shares: dict[str, object]
    explorer: dict[str, object]
    figures: list[Figure]
    samples_table: str
    samples_train_table: str
