"""Numpy-only analysis of decision trajectories (``../shared/paper.md`` §2); imports neither torch nor Lightning.

Nouns used the same way everywhere: ``correct`` (M, N) or (R, N) bool, ``evaluated`` the same shape,
``k`` (N,) integer runs-correct counts, ``labels`` (N,) :class:`Difficulty`, ``category`` (N,) :class:`Category`.
"""

from lightning_ddd.analysis.consistency import (
    ConditionConsistency,
    ConsistencyResult,
    bootstrap_kappa,
    condition_consistency,
    consistency_plus_n,
    consistency_to_base,
    pairwise_consistency,
    resample_indices,
)
from lightning_ddd.analysis.difficulty import (
    BinomialComparison,
    Difficulty,
    DifficultyResult,
    LabelErrorShares,
    binomial_reference,
    check_tolerance,
    classify_difficulty,
    compare_to_binomial,
    count_correct,
    k_from_fractions,
    k_histogram,
    label_error_shares,
    pure_ddd_reference,
    summarize_difficulty,
)
from lightning_ddd.analysis.dynamics import Category, Dynamics, DynamicsAccumulator, RowStats, summarize_dynamics
from lightning_ddd.analysis.kappa import PairStats, consistency_matrix, error_consistency, stats_from_counts
from lightning_ddd.analysis.loading import (
    RunMatrix,
    Trajectory,
    align_rows,
    check_same_dataset,
    comparison_epoch,
    default_burn_in,
    drop_duplicates,
    find_stores,
    load_runs,
    load_trajectory,
    runs_at_row,
    stream_dynamics,
    upto_row,
)
from lightning_ddd.analysis.significance import (
    KappaDifference,
    Significance,
    adjust_pair_matrix,
    adjust_pvalues,
    copy_probability,
    debiased_kappa,
    exact_independence_test,
    interval_width,
    kappa_difference,
    kappa_standard_error,
    klein_independence_test,
    klein_matrix_test,
    pair_counts,
    samples_for_width,
    significance_matrix,
)

__all__ = [
    "KappaDifference", "Significance", "adjust_pair_matrix", "adjust_pvalues", "copy_probability",
    "debiased_kappa", "exact_independence_test", "interval_width", "kappa_difference", "kappa_standard_error",
    "klein_independence_test", "klein_matrix_test", "pair_counts", "samples_for_width", "significance_matrix",
    "BinomialComparison", "Category", "ConditionConsistency", "ConsistencyResult", "Difficulty", "DifficultyResult",
    "Dynamics", "DynamicsAccumulator", "LabelErrorShares", "PairStats", "RowStats", "RunMatrix", "Trajectory",
    "align_rows", "binomial_reference", "bootstrap_kappa", "check_same_dataset", "check_tolerance",
    "classify_difficulty", "compare_to_binomial", "comparison_epoch", "condition_consistency", "consistency_matrix",
    "consistency_plus_n", "consistency_to_base", "count_correct", "default_burn_in", "drop_duplicates",
    "error_consistency",
    "find_stores", "k_from_fractions", "k_histogram", "label_error_shares", "load_runs", "load_trajectory",
    "pairwise_consistency", "pure_ddd_reference", "resample_indices", "runs_at_row", "stats_from_counts",
    "stream_dynamics", "summarize_difficulty", "summarize_dynamics", "upto_row",
]
