"""The per-run part of a comparison: each run's comparison row and kind, its dynamics, and the notes about
its store (parked rows, partial rows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from lightning_ddd.analysis.comparison_parts import RunDetail, RunSummary, TrainingDynamics
from lightning_ddd.analysis.dynamics import summarize_dynamics
from lightning_ddd.analysis.loading import (
    RunMatrix,
    Trajectory,
    load_trajectory,
    runs_at_row,
    training_split,
    upto_row,
    with_scores,
)

KIND_TRAINED = "training run"
KIND_EVALUATED = "evaluated model"


def pending_notes(runs: Sequence[Trajectory], progress: Callable[[str], None]) -> list[str]:
    """A note per run whose store has rows parked in side files (not in this comparison)."""
    from lightning_ddd.store.pending import pending_dir, pending_files

    notes = []
    for t in runs:
        pending = len(pending_files(t.path))
        if pending:
            msg = (f"Run {t.name!r}: {pending} row(s) pending in {pending_dir(t.path)} are not in this report; run "
                   f"`lightning-ddd repair {t.path}` to merge them.")
            notes.append(msg)
            progress(msg)
    return notes


def choose_rows(runs: Sequence[Trajectory], row: int | None, epoch: float | None, epoch_source: str
                ) -> tuple[RunMatrix, str, tuple[str, ...]]:
    """Each run's comparison row, how it was chosen, and each run's kind."""
    from lightning_ddd.store import RowFlag

    m = runs_at_row(runs, row=row, epoch=epoch)
    if row is not None:
        how = f"row {row} of each run (--row)"
    elif epoch is not None:
        how = f"epoch {epoch:g} ({epoch_source})"
    else:
        how = "the latest epoch every run recorded"
    kinds = tuple(KIND_EVALUATED if int(t.flags[int(p)]) & RowFlag.EVALUATION else KIND_TRAINED
                  for t, p in zip(runs, m.rows))
    if all(k == KIND_EVALUATED for k in kinds):  # pretrained or saved models, each evaluated once
        how = "a single evaluation of each model (weights not trained by this Trainer)"
        m = dataclasses.replace(m, row="a single evaluation of each model")
    elif KIND_EVALUATED in kinds:
        how += "; evaluated models at their single evaluation"
    return m, how, kinds


def coverage_notes(runs: Sequence[Trajectory], n: int, progress: Callable[[str], None]) -> list[str]:
    """A note per run with rows that evaluated only part of the split (``limit_val_batches``)."""
    notes = []
    for t in runs:
        counts = t.evaluated.sum(axis=1)
        if (counts < n).any():
            msg = (f"Run {t.name!r}: {int((counts < n).sum())} of {len(counts)} rows cover only part of the {n} "
                   f"samples (as few as {int(counts.min())}; e.g. Trainer(limit_val_batches=...)); samples a row "
                   "did not evaluate are 'not evaluated' there, counted neither right nor wrong.")
            notes.append(msg)
            progress(msg)
    return notes


def run_summaries(runs: Sequence[Trajectory], m: RunMatrix, kinds: tuple[str, ...], base_i: int, *, split: str,
                  all_rows: bool, detail: int, progress: Callable[[str], None]) -> tuple[RunSummary, ...]:
    """Per-run dynamics (up to the comparison row unless ``all_rows``); per-sample detail for the first runs."""
    progress(f"per-run dynamics of {len(runs)} runs")
    order = [base_i] + [i for i in range(len(runs)) if i != base_i]
    models_only = all(k == KIND_EVALUATED for k in kinds)
    detailed = set(order[: min(1, detail)] if models_only else order[:detail])  # models: the base's predictions
    out = []
    for i, (t, p) in enumerate(zip(runs, m.rows)):
        cut = t if all_rows else upto_row(t, int(p))
        run_detail = None
        if i in detailed:
            full = with_scores(cut, split)  # only probabilities and margins are read again
            d = summarize_dynamics(full.correct, full.evaluated, pred=full.pred, prob=full.prob, margin=full.margin,
                                   burn_in=full.burn_in)
            training = None if models_only else training_dynamics(t, None if all_rows else float(full.epochs[-1]))
            run_detail = RunDetail(trajectory=full, dynamics=d, training=training)
        else:
            d = summarize_dynamics(cut.correct, cut.evaluated, pred=cut.pred, burn_in=cut.burn_in)
        out.append(RunSummary(name=t.name, kind=kinds[i], trajectory=cut, row=int(p), epoch=float(m.epochs[i]),
                              dynamics=d, detail=run_detail, evaluated_per_row=t.evaluated.sum(axis=1),
                              evaluated_at_comparison=int(m.evaluated[i].sum())))
    return tuple(out)


def training_dynamics(t: Trajectory, upto_epoch: float | None) -> TrainingDynamics | None:
    """The run's training-split dynamics (data map, AUM, forgetting), up to ``upto_epoch``, if it recorded a
    training split with probabilities.
    """
    from lightning_ddd.store import open_store

    store = open_store(t.path)
    name = training_split(t.path, store)
    if name is None:
        return None
    tr = load_trajectory(t.path, name, store=store)
    if upto_epoch is not None:
        rows = np.flatnonzero(tr.epochs <= upto_epoch + 1e-9)
        if not rows.size:
            return None
        tr = upto_row(tr, int(rows[-1]))
    return TrainingDynamics(split=name, trajectory=tr, dynamics=summarize_dynamics(
        tr.correct, tr.evaluated, pred=tr.pred, prob=tr.prob, margin=tr.margin, burn_in=tr.burn_in))
