"""Numpy-only analysis of decision trajectories (paper §2); imports neither torch nor Lightning."""

from lightning_ddd.analysis.dynamics import (
    Category,
    Dynamics,
    DynamicsAccumulator,
    RowStats,
    summarize_dynamics,
)
from lightning_ddd.analysis.kappa import PairStats, consistency_matrix, error_consistency, stats_from_counts

__all__ = [
    "Category", "Dynamics", "DynamicsAccumulator", "PairStats", "RowStats", "consistency_matrix",
    "error_consistency", "stats_from_counts", "summarize_dynamics",
]
