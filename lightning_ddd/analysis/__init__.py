"""Numpy-only analysis of decision trajectories (``../shared/paper.md`` §2); imports neither torch nor Lightning.

Nouns used the same way everywhere: ``correct`` (M, N) or (R, N) bool, ``evaluated`` the same shape,
``k`` (N,) integer runs-correct counts, ``labels`` (N,) :class:`Difficulty`, ``category`` (N,) :class:`Category`.

This namespace holds the result-level API (:func:`compare_runs` and the functions it composes); the kernels
(bootstrap, null draws, p-value corrections, planning helpers) are imported from their modules.
"""

from __future__ import annotations

from lightning_ddd.analysis.comparison import CompareOptions, Comparison, compare_runs
from lightning_ddd.analysis.consistency import (
    ConsistencyResult,
    condition_consistency,
    consistency_plus_n,
    consistency_to_base,
    pairwise_consistency,
)
from lightning_ddd.analysis.differences import kappa_difference
from lightning_ddd.analysis.difficulty import (
    Difficulty,
    DifficultyResult,
    compare_to_binomial,
    count_correct,
    label_error_shares,
    summarize_difficulty,
)
from lightning_ddd.analysis.dynamics import Category, Dynamics, summarize_dynamics
from lightning_ddd.analysis.kappa import error_consistency
from lightning_ddd.analysis.loading import (
    RunMatrix,
    Trajectory,
    align_rows,
    find_stores,
    load_runs,
    load_trajectory,
    runs_at_row,
    stream_dynamics,
    upto_row,
)
from lightning_ddd.analysis.planning import samples_for_difference, samples_for_power
from lightning_ddd.analysis.significance import Significance, significance_matrix

__all__ = [
    "Category", "CompareOptions", "Comparison", "ConsistencyResult", "Difficulty", "DifficultyResult", "Dynamics",
    "RunMatrix", "Significance", "Trajectory", "align_rows", "compare_runs", "compare_to_binomial",
    "condition_consistency", "consistency_plus_n", "consistency_to_base", "count_correct", "error_consistency",
    "find_stores", "kappa_difference", "label_error_shares", "load_runs", "load_trajectory", "pairwise_consistency",
    "runs_at_row", "samples_for_difference", "samples_for_power", "significance_matrix", "stream_dynamics",
    "summarize_difficulty", "summarize_dynamics", "upto_row",
]
