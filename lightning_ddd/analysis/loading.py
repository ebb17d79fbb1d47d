"""Loading runs from stores for the analysis: one store, many, a directory or a glob.

Stores are read through :class:`~lightning_ddd.store.DecisionStore`'s public API. Runs whose sample ids or
targets disagree are refused, naming the difference; duplicate runs (same run id, or identical arrays) are
dropped with a warning, since counting a run twice inflates trivial and impossible (the paper's own
"13 conditions" contained duplicated runs).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from lightning_ddd.store.reader import DecisionStore, open_store

STORE_SUFFIXES = (".h5", ".hdf5")


def find_stores(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files, directories (their ``*.h5`` files) and glob patterns into a sorted list of stores.

    Raises:
        FileNotFoundError: an input matches nothing.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found: list[Path] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            try:
                matches = sorted(p for p in path.iterdir() if p.suffix in STORE_SUFFIXES)
            except PermissionError:
                from lightning_ddd.store.errors import permission_denied

                raise permission_denied(path, "list") from None
            if not matches:
                raise FileNotFoundError(f"No .h5 decision stores in directory {text!r}.")
        elif any(ch in text for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            if not matches:
                raise FileNotFoundError(f"No file matches {text!r}.")
        else:
            if not path.exists():
                raise FileNotFoundError(f"No decision store at {text!r}.")
            matches = [path]
        found.extend(matches)
    return list(dict.fromkeys(found))


@dataclasses.dataclass
class Trajectory:
    """One run's rows of one split, loaded into memory.

    Attributes:
        name: run name; run_id: unique id; path: store file.
        epochs: (R,) epoch of each row; global_steps: (R,); flags: (R,).
        correct, evaluated, pred: (R, N); prob, margin: (R, N) or None.
        ids, targets: (N,).
        metadata: run metadata.
    """

    name: str
    run_id: str
    path: Path
    epochs: np.ndarray
    global_steps: np.ndarray
    flags: np.ndarray
    correct: np.ndarray
    evaluated: np.ndarray
    pred: np.ndarray
    prob: np.ndarray | None
    margin: np.ndarray | None
    ids: np.ndarray
    targets: np.ndarray
    metadata: dict

    @property
    def burn_in(self) -> int:
        """Rows to ignore per sample by default: 1 if the first row is the untrained network, else 0
        (a training split starts at epoch 1).
        """
        return default_burn_in(self.flags)

    def row_at(self, row: int | None = None, epoch: float | None = None) -> int:
        """Position of a row: by index (negative from the end) or by epoch value; default the last row."""
        if epoch is not None:
            hits = np.flatnonzero(np.isclose(self.epochs, epoch))
            if not hits.size:
                raise ValueError(f"Run {self.name!r} ({self.path}) has no row at epoch {epoch:g}; it has epochs "
                                 f"{_epochs_text(self.epochs)}. Pass an epoch every run recorded.")
            return int(hits[-1])
        r = -1 if row is None else row
        if not -len(self.epochs) <= r < len(self.epochs):
            raise ValueError(f"Run {self.name!r} has {len(self.epochs)} rows; row {r} does not exist.")
        return r % len(self.epochs)


def default_burn_in(flags: np.ndarray) -> int:
    """1 when the first row is flagged "before training" (the untrained network), else 0."""
    from lightning_ddd.store import RowFlag

    return int(len(flags) > 0 and bool(int(flags[0]) & RowFlag.BEFORE_TRAINING))


def load_trajectory(path: str | os.PathLike, split: str = "val", *, fields: Sequence[str] = ("prob", "margin"),
                    store: DecisionStore | None = None) -> Trajectory:
    """Load one run's split.

    Args:
        path: store file.
        split: split name.
        fields: optional per-sample fields to load if recorded (``prob``, ``margin``).
        store: an already opened store.
    """
    s = store or open_store(path)
    info = s.info(split)
    rows = s.rows(split)
    opt = {}
    for f in ("prob", "margin"):
        source = "loss" if f == "prob" else f
        opt[f] = s.read(split, f) if f in fields and source in info.fields else None
    return Trajectory(
        name=s.run_name, run_id=s.run_id, path=Path(path), epochs=rows["epoch"], global_steps=rows["global_step"],
        flags=rows["flags"], correct=s.read(split, "correct"), evaluated=s.read(split, "evaluated"),
        pred=s.read(split, "pred"), prob=opt["prob"], margin=opt["margin"], ids=s.ids(split),
        targets=s.targets(split), metadata=s.metadata,
    )


def with_scores(t: Trajectory, split: str, store: DecisionStore | None = None) -> Trajectory:
    """``t`` (split ``split``) with its probabilities and margins when recorded, read for exactly its rows: what
    was loaded with ``fields=()`` is not read again, and rows appended since (a run still recording) stay out.
    """
    s = store or open_store(t.path)
    info = s.info(split)
    rows = slice(0, len(t.epochs))
    prob = s.read(split, "prob", rows=rows) if t.prob is None and "loss" in info.fields else t.prob
    margin = s.read(split, "margin", rows=rows) if t.margin is None and "margin" in info.fields else t.margin
    return dataclasses.replace(t, prob=prob, margin=margin)


def _fingerprint(t: Trajectory) -> str:
    h = hashlib.sha1()
    for a in (t.correct, t.evaluated, t.pred):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def check_same_dataset(trajectories: Sequence[Trajectory]) -> None:
    """Refuse runs whose sample ids or targets disagree, naming the difference.

    Raises:
        ValueError: different sample counts, ids or targets.
    """
    if not trajectories:
        return
    first = trajectories[0]
    for t in trajectories[1:]:
        if t.ids.shape != first.ids.shape:
            raise ValueError(
                f"Runs {first.name!r} ({first.path}) and {t.name!r} ({t.path}) hold different datasets: "
                f"{first.ids.size} vs {t.ids.size} samples. Compare only runs on the same split."
            )
        if not np.array_equal(t.ids, first.ids):
            bad = np.flatnonzero(t.ids != first.ids)
            raise ValueError(f"Runs {first.name!r} and {t.name!r} have different sample ids at {bad.size} positions.")
        both = (t.targets >= 0) & (first.targets >= 0)
        diff = both & (t.targets != first.targets)
        if diff.any():
            bad = np.flatnonzero(diff)
            raise ValueError(
                f"Runs {first.name!r} ({first.path}) and {t.name!r} ({t.path}) disagree on the targets of "
                f"{bad.size} samples (ids {bad[:10].tolist()}): they were recorded on different datasets or orders."
            )


def drop_duplicates(trajectories: Sequence[Trajectory]) -> list[Trajectory]:
    """Keep each distinct run once (same run id, or identical correctness/prediction arrays), with a warning."""
    seen_ids: dict[str, str] = {}
    seen_arrays: dict[str, str] = {}
    kept = []
    for t in trajectories:
        fp = _fingerprint(t)
        dup = seen_ids.get(t.run_id) if t.run_id else None
        dup = dup or seen_arrays.get(fp)
        if dup is not None:
            warnings.warn(f"Run {t.name!r} ({t.path}) duplicates run {dup!r}; it is counted once.", stacklevel=2)
            continue
        if t.run_id:
            seen_ids[t.run_id] = t.name
        seen_arrays[fp] = t.name
        kept.append(t)
    return kept


def training_split(path: str | os.PathLike, store: DecisionStore | None = None) -> str | None:
    """The name of the store's training split (``record_train=True``) if it recorded rows with losses, else None."""
    s = store or open_store(path)
    for name, info in s.split_infos.items():
        if info.kind == "train" and "loss" in info.fields and info.num_rows:
            return name
    return None


def load_runs(inputs: str | os.PathLike | Iterable[str | os.PathLike], split: str = "val", *,
              fields: Sequence[str] = ("prob", "margin")) -> list[Trajectory]:
    """Load every distinct run of a split from files, directories or globs, checked to share one dataset."""
    runs = [load_trajectory(p, split, fields=fields) for p in find_stores(inputs)]
    runs = drop_duplicates(runs)
    check_same_dataset(runs)
    return runs


@dataclasses.dataclass
class RunMatrix:
    """Many runs' correctness at one row each.

    Attributes:
        correct: (M, N) bool; evaluated: (M, N) bool.
        runs: run names; rows: (M,) row position used per run; epochs: (M,) their epochs.
        row: description (``"last"``, ``"row 5"``, ``"epoch 30"``).
    """

    correct: np.ndarray
    evaluated: np.ndarray
    runs: tuple[str, ...]
    rows: np.ndarray
    epochs: np.ndarray
    row: str


def comparison_epoch(trajectories: Sequence[Trajectory]) -> float:
    """The latest epoch that every run recorded: the default epoch at which runs are compared.

    Runs trained for different lengths (the base run trains longer for "+1" / "+n epochs") are thereby
    compared at one epoch, as the paper does, never each at its own last row.

    Raises:
        ValueError: no epoch is common to all runs (naming each run's epochs).
    """
    if not trajectories:
        raise ValueError("No runs to compare.")
    common = set(np.round(trajectories[0].epochs, 6).tolist())
    for t in trajectories[1:]:
        common &= set(np.round(t.epochs, 6).tolist())
    if not common:
        listing = "; ".join(f"{t.name!r}: {_epochs_text(t.epochs)}" for t in trajectories)
        raise ValueError(f"No epoch was recorded by every run, so they cannot be compared at one epoch ({listing}). "
                         "Pass --epoch/--row, or compare runs recorded at common epochs.")
    return float(max(common))


def _epochs_text(epochs: np.ndarray) -> str:
    values = [f"{e:g}" for e in np.asarray(epochs).tolist()]
    return "[" + ", ".join(values if len(values) <= 12 else values[:5] + ["..."] + values[-5:]) + "]"


def upto_row(t: Trajectory, row: int) -> Trajectory:
    """The run's rows 0..``row`` (inclusive): per-run dynamics up to the comparison epoch."""
    end = int(row) + 1
    cut = {f.name: getattr(t, f.name)[:end] for f in dataclasses.fields(t)
           if f.name in ("epochs", "global_steps", "flags", "correct", "evaluated", "pred", "prob", "margin")
           and getattr(t, f.name) is not None}
    return dataclasses.replace(t, **cut)


def runs_at_row(trajectories: Sequence[Trajectory], *, row: int | None = None, epoch: float | None = None,
                latest: bool = False) -> RunMatrix:
    """Stack each run's correctness at one row.

    Args:
        trajectories: the runs.
        row: row position (negative from the end) in each run.
        epoch: the epoch to compare at (a run without it is an error naming its epochs).
        latest: with neither ``row`` nor ``epoch``, compare each run at its own last row instead of at the
            latest epoch every run recorded (:func:`comparison_epoch`, the default).
    """
    if row is None and epoch is None and not latest:
        epoch = comparison_epoch(trajectories)
    positions = np.array([t.row_at(row, epoch) for t in trajectories], dtype=int)
    desc = f"epoch {epoch:g}" if epoch is not None else ("last" if row is None or row == -1 else f"row {row}")
    return RunMatrix(
        correct=np.stack([t.correct[p] for t, p in zip(trajectories, positions)]),
        evaluated=np.stack([t.evaluated[p] for t, p in zip(trajectories, positions)]),
        runs=tuple(t.name for t in trajectories), rows=positions,
        epochs=np.array([t.epochs[p] for t, p in zip(trajectories, positions)]), row=desc,
    )


def align_rows(trajectories: Sequence[Trajectory]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align runs on the epochs all of them recorded.

    Returns:
        ``(epochs (R,), correct (M, R, N), evaluated (M, R, N))`` over the common epochs.
    """
    common = set(np.round(trajectories[0].epochs, 6).tolist())
    for t in trajectories[1:]:
        common &= set(np.round(t.epochs, 6).tolist())
    epochs = np.array(sorted(common))
    pos = [[int(np.flatnonzero(np.isclose(t.epochs, e))[-1]) for e in epochs] for t in trajectories]
    correct = np.stack([t.correct[p] for t, p in zip(trajectories, pos)])
    evaluated = np.stack([t.evaluated[p] for t, p in zip(trajectories, pos)])
    return epochs, correct, evaluated


def stream_dynamics(path: str | os.PathLike, split: str = "val", *, burn_in: int | None = None,  # noqa: ANN201
                    flip_threshold: int = 1):
    """One run's :class:`~lightning_ddd.analysis.dynamics.Dynamics`, streamed row by row from its store.

    Memory stays O(N) whatever the number of rows (1.28 M samples x 91 rows fit in well under 2 GB).
    ``burn_in`` defaults to :func:`default_burn_in` of the rows' flags.
    """
    from lightning_ddd.analysis.dynamics import DynamicsAccumulator

    s = open_store(path)
    info = s.info(split)
    if burn_in is None:
        burn_in = default_burn_in(s.rows(split)["flags"])
    fields = ["evaluated", "correct", "pred"] + (["prob"] if "loss" in info.fields else []) + (
        ["margin"] if "margin" in info.fields else [])
    acc = DynamicsAccumulator(info.num_samples, burn_in=burn_in, flip_threshold=flip_threshold)
    for row in s.iter_rows(split, tuple(fields)):
        acc.update(row["correct"], row["evaluated"], pred=row["pred"], prob=row.get("prob"), margin=row.get("margin"))
    return acc.result()
