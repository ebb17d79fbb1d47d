"""The study's JSON documents: the design (``design.json``, written by ``study make``), the observers' trials
(jsPsych's rows, read back from their results files) and the scored summary (``summary.json`` of
``study score``).

The results files come from observers' browsers: :func:`~lightning_ddd.study.score.read_results` types their
values and :func:`~lightning_ddd.study.score.load_observers` checks every row against the design before a
:class:`Response` is scored.
"""

from __future__ import annotations

from typing import TypedDict


class Trial(TypedDict, total=False):
    """One trial of the design: a pair (Experiment 1, 2AFC) or one image to describe (Experiment 2)."""

    trial: int
    pair_id: str
    practice: bool
    left: int
    right: int
    trivial_side: str
    trivial: int
    impossible: int
    sample_id: int
    difficulty: str


class Sample(TypedDict, total=False):
    """One shown sample: the networks' correct count k, its difficulty, its label and its image file."""

    k: int
    difficulty: str
    label: str
    image: str


class Design(TypedDict, total=False):
    """``design.json``: what ``study make`` built, enough to score any results file against."""

    study_id: str
    experiment: str
    trials: list[Trial]
    samples: dict[str, Sample]
    break_every: int
    seed: int
    tolerance: int
    split: str
    comparison: str | None
    runs: list[str]
    n_runs: int
    n_samples: int
    images: str
    text: dict[str, str | list[str]]
    selection: str
    stimuli: str
    paper_way: bool
    label_errors_excluded: bool
    jspsych: dict[str, str]


class Response(TypedDict, total=False):
    """One answered trial as jsPsych saved it (the study page's ``data`` fields)."""

    task: str
    study_id: str
    participant: str
    trial_number: int
    pair_id: str
    practice: bool
    left_id: int
    right_id: int
    response: int
    correct: bool
    rt: float
    sample_id: int
    categories: int
    main_category: str
    odd: str


Observers = dict[str, list[Response]]
"""Each observer's answered trials, by participant id."""


class ObserverScore(TypedDict):
    """One observer's accuracy in Experiment 1 (main trials)."""

    participant: str
    trials: int
    correct: int
    accuracy: float | None
    ci_low: float
    ci_high: float
    p_value: float
    median_rt_ms: float | None


class ImageScore(TypedDict):
    """Human accuracy on the trials that showed one image."""

    id: int
    difficulty: str
    k: int
    label: str
    answers: int
    human_accuracy: float


class ErrorConsistency(TypedDict):
    """Kappa between every two observers over the main trials both answered."""

    observers: list[str]
    kappa: list[list[float | None]]
    ci_low: list[list[float | None]]
    ci_high: list[list[float | None]]
    mean_kappa: float


class TwoAfcScore(TypedDict, total=False):
    """Experiment 1's statistics."""

    observers: list[ObserverScore]
    n_observers: int
    n_pairs: int
    mean_accuracy: float | None
    min_accuracy: float | None
    max_accuracy: float | None
    paper: dict[str, object]
    error_consistency: ErrorConsistency
    images: list[ImageScore]


class RatingsScore(TypedDict):
    """Experiment 2's answers: counts and shares per question, option and difficulty."""

    n_observers: int
    counts: dict[str, dict[str, dict[str, int]]]
    shares: dict[str, dict[str, dict[str, float] | None]]
    questions: dict[str, str]


class StudySummary(TypedDict, total=False):
    """``summary.json`` of ``study score``."""

    study_id: str
    experiment: str
    results: list[str]
    notes: list[str]
    score: TwoAfcScore | RatingsScore
    selection: str
    stimuli: str
    paper_way: bool
    how_built: str
    figures: list[dict[str, str]]
