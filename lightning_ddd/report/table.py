"""The per-sample table shared by ``report`` and ``export``: one row per sample."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from lightning_ddd.analysis.comparison import Comparison
from lightning_ddd.analysis.difficulty import Difficulty
from lightning_ddd.analysis.dynamics import Category, Dynamics


def per_sample_table(ids: np.ndarray, targets: np.ndarray, dynamics: Dynamics, epochs: np.ndarray,
                     k: np.ndarray | None = None, difficulty: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Columns: id, target, category, first-learned row and epoch, forgetting events, confidence,
    variability, correctness, AUM, and (across runs) k and difficulty.

    ``forgetting_events`` follows Toneva et al.: a never-learned sample counts as forgotten infinitely often
    (``inf``), so sorting by it puts the most forgettable samples, never learned ones first, at the top;
    ``observed_forgetting_events`` is the plain count of correct -> wrong transitions.
    """
    names = Category.keys()
    first_epoch = np.where(dynamics.first_learned >= 0, epochs[np.clip(dynamics.first_learned, 0, None)], np.nan)
    cols = {
        "id": ids, "target": targets, "category": names[dynamics.category],
        "first_learned_row": dynamics.first_learned, "first_learned_epoch": first_epoch,
        "forgetting_events": np.where(dynamics.category == Category.NEVER_LEARNED, np.inf,
                                      dynamics.forgetting_events.astype(np.float64)),
        "observed_forgetting_events": dynamics.forgetting_events, "rows_correct": dynamics.rows_correct,
        "confidence": dynamics.confidence, "variability": dynamics.variability,
        "correctness": dynamics.correctness, "aum": dynamics.aum,
    }
    if k is not None:
        cols["k"] = k
    if difficulty is not None:
        cols["difficulty"] = Difficulty.keys()[difficulty]
    return cols


def base_table(c: Comparison) -> dict[str, np.ndarray]:
    """The per-sample table of the comparison's base run, with k and difficulty across runs.

    Raises:
        ValueError: the base run has no per-sample detail.
    """
    detail = c.base_run.detail
    if detail is None:
        raise ValueError(f"The base run {c.base!r} has no per-sample detail.")
    t = detail.trajectory
    k = c.reference.k if c.reference is not None else None
    labels = c.difficulty.labels if c.difficulty is not None else None
    if c.models_only:
        return models_table(c)
    return per_sample_table(t.ids, t.targets, detail.dynamics, t.epochs, k, labels)


def models_table(c: Comparison) -> dict[str, np.ndarray]:
    """The per-sample table of models evaluated once: id, target, k, difficulty and each model's correctness
    (1, 0, or -1 where its evaluation did not cover the sample); no training-dynamics columns, which a single
    evaluation does not define.
    """
    t = c.runs[c.base_index].trajectory
    cols: dict[str, np.ndarray] = {"id": t.ids, "target": t.targets}
    if c.reference is not None:
        cols["k"] = c.reference.k
    if c.difficulty is not None:
        cols["difficulty"] = Difficulty.keys()[c.difficulty.labels]
    for i, name in enumerate(c.names):
        cols[f"correct:{name}"] = np.where(c.matrix.evaluated[i], c.matrix.correct[i].astype(np.int8), -1)
    return cols


def write_table(cols: dict[str, np.ndarray], path: str | os.PathLike, fmt: str = "csv") -> Path:
    """Write the table as CSV or Parquet.

    Raises:
        ModuleNotFoundError: Parquet without pyarrow, naming the extra to install.
    """
    path = Path(path)
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ModuleNotFoundError as err:
            raise ModuleNotFoundError(
                "Parquet export needs pyarrow: pip install 'lightning-ddd[parquet]'."
            ) from err
        table = pa.table({k: np.asarray(v) for k, v in cols.items()})
        table = table.replace_schema_metadata({b"lightning-ddd": b"export"})
        pq.write_table(table, path)
        return path
    if fmt != "csv":
        raise ValueError(f"format must be 'csv' or 'parquet', got {fmt!r}.")
    names = list(cols)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        columns = [np.asarray(cols[n]) for n in names]
        for i in range(len(columns[0])):
            w.writerow([_cell(c[i]) for c in columns])
    return path


def _cell(v: object) -> object:
    if isinstance(v, (float, np.floating)):
        if np.isinf(v):
            return "inf" if v > 0 else "-inf"
        return "" if not np.isfinite(v) else f"{float(v):.6g}"
    if isinstance(v, np.integer):
        return int(v)
    return v
