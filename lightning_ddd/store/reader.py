"""``DecisionStore``: read a decision store into numpy arrays, never holding the file open.

Every call opens the file without HDF5 file locking, reads, and closes. Writers never change the file in
place: each row goes into a copy that atomically replaces it, so a reader opens a whole store (and one that
holds the file keeps its snapshot). Only committed rows are visible: a store from before copy-on-write writes
may hold rows without their commit marker (a kill mid-write), and they do not exist for readers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lightning_ddd.store import format as fmt
from lightning_ddd.store.errors import StoreError, StoreFormatError, permission_denied
from lightning_ddd.store.pending import pending_files
from lightning_ddd.store.validate import CheckedStore, check_store


@dataclasses.dataclass(frozen=True)
class SplitInfo:
    """Description of one recorded split.

    Attributes:
        name: split name.
        kind: ``"validation"`` or ``"train"``.
        num_samples: N.
        num_classes: number of classes.
        num_rows: committed rows.
        fields: per-sample fields recorded.
    """

    name: str
    kind: str
    num_samples: int
    num_classes: int
    num_rows: int
    fields: tuple[str, ...]


class DecisionStore:
    """Read access to one decision store (HDF5).

    Args:
        path: the ``.h5`` file written by :class:`~lightning_ddd.DecisionRecorder`.
        retries: ignored (kept so that older calls still work): writers replace the store atomically, so a
            reader never meets a write in progress.

    Raises:
        FileNotFoundError: the file does not exist.
        StoreFormatError: the file is not HDF5, not a decision store, damaged, or of a newer format version.

    Example::

        store = DecisionStore("ddd/run.h5")
        correct = store.read("val", "correct")    # (rows, samples) bool
        evaluated = store.read("val", "evaluated")
    """

    def __init__(self, path: str | os.PathLike, *, retries: int | None = None) -> None:
        self.path = Path(path)
        self.retries = retries
        if self.path.is_dir():
            raise StoreFormatError(f"{str(self.path)!r} is a directory, not a decision store file.")
        if not self.path.exists():
            raise FileNotFoundError(f"No decision store at {str(self.path)!r}.")
        try:
            with open(self.path, "rb"):
                pass
        except PermissionError:
            raise permission_denied(self.path) from None
        checked = self._load_checked()
        self.attrs: dict[str, Any] = checked.attrs
        self._metadata = checked.metadata
        self._committed: dict[str, np.ndarray] = {name: c.committed for name, c in checked.splits.items()}
        self.split_infos: dict[str, SplitInfo] = {
            name: SplitInfo(name=name, kind=c.kind, num_samples=c.num_samples, num_classes=c.num_classes,
                            num_rows=int(c.committed.size), fields=c.fields)
            for name, c in checked.splits.items()
        }

    def _load_checked(self) -> CheckedStore:
        """Open and check the file once: writers replace the store atomically (copy-on-write), so a reader
        sees a whole store, the one before a row or the one after it, never a write in progress; a check that
        fails is real damage.
        """
        try:
            with self._open() as f:
                return check_store(f, repr(str(self.path)))
        except StoreFormatError:
            raise
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as err:
            raise StoreFormatError(f"{str(self.path)!r} cannot be read as a decision store: {err}. The file "
                                   "is damaged.") from None

    # ------------------------------------------------------------------ low level
    def _open(self) -> h5py.File:
        try:
            return h5py.File(self.path, "r", locking=False)
        except OSError as err:
            raise StoreFormatError(
                f"Cannot read {str(self.path)!r} as an HDF5 decision store ({err}). The file is not HDF5, or "
                "it is truncated or damaged."
            ) from None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[h5py.File]:
        """Open the file for one read; low-level failures become one :class:`StoreFormatError`."""
        try:
            with self._open() as f:
                yield f
        except StoreError:
            raise
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as err:
            raise StoreFormatError(f"{str(self.path)!r} cannot be read: {err}. The file is damaged.") from None

    def _split(self, split: str) -> SplitInfo:
        if split not in self.split_infos:
            raise KeyError(f"Split {split!r} is not in {str(self.path)!r}; it has {sorted(self.split_infos)}.")
        return self.split_infos[split]

    # ------------------------------------------------------------------ metadata
    @property
    def format_version(self) -> int:
        """Store format version of the file."""
        return int(self.attrs["format_version"])

    @property
    def run_name(self) -> str:
        """Run name given when recording."""
        return str(self.attrs.get("run_name", self.path.stem))

    @property
    def run_id(self) -> str:
        """Unique run id (the same across resumes)."""
        return str(self.attrs.get("run_id", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        """Run metadata: hyperparameters, model class, seed, versions, start time."""
        return json.loads(json.dumps(self._metadata))

    @property
    def splits(self) -> list[str]:
        """Names of the recorded splits."""
        return sorted(self.split_infos)

    def info(self, split: str) -> SplitInfo:
        """Return the :class:`SplitInfo` of a split."""
        return self._split(split)

    # ------------------------------------------------------------------ data
    def ids(self, split: str) -> np.ndarray:
        """Sample ids (N,) int64."""
        self._split(split)
        with self._reading() as f:
            return f[fmt.SPLITS_GROUP][split]["ids"][()]

    def targets(self, split: str) -> np.ndarray:
        """Targets (N,) int64; -1 for samples never evaluated."""
        self._split(split)
        with self._reading() as f:
            return f[fmt.SPLITS_GROUP][split]["targets"][()]

    def rows(self, split: str) -> dict[str, np.ndarray]:
        """Per-row values of committed rows: ``global_step``, ``epoch``, ``flags``, ``wall_time``."""
        self._split(split)
        rows = self._committed[split]
        with self._reading() as f:
            group = f[fmt.SPLITS_GROUP][split]
            return {f.name: group[f.name][()][rows] for f in fmt.ROW_VALUES if f.name != "committed"}

    def read(self, split: str, field: str, *, rows: slice | np.ndarray | None = None,
             samples: slice | None = None) -> np.ndarray:
        """Read a per-sample field of committed rows.

        Args:
            split: split name.
            field: one of ``evaluated``, ``correct``, ``pred``, ``loss``, ``margin``, ``presentations``, or
                ``prob`` (true-class probability, derived as exp(-loss), or sigmoid for binary outputs).
            rows: which committed rows (positions among committed rows); all by default.
            samples: a slice of sample ids; all by default.

        Returns:
            (rows, samples) array.

        Raises:
            KeyError: the split or field is not recorded.
        """
        info = self._split(split)
        if field == "prob":
            return np.exp(-self.read(split, "loss", rows=rows, samples=samples).astype(np.float64))
        if field not in info.fields:
            raise KeyError(f"Field {field!r} is not recorded in split {split!r}; recorded: {list(info.fields)}.")
        committed = self._committed[split]
        chosen = committed if rows is None else committed[rows]
        cols = samples if samples is not None else slice(None)
        with self._reading() as f:
            ds = f[fmt.SPLITS_GROUP][split][field]
            if chosen.size == 0:
                return np.empty((0, ds[0:0, cols].shape[1]), dtype=ds.dtype)
            if chosen.size == ds.shape[0] or (chosen[-1] - chosen[0] + 1 == chosen.size):
                return ds[int(chosen[0]): int(chosen[-1]) + 1, cols]
            return ds[chosen, cols]

    def iter_rows(self, split: str, fields: tuple[str, ...] = ("evaluated", "correct")
                  ) -> Iterator[dict[str, np.ndarray]]:
        """Yield committed rows one by one as ``{field: (N,) array}``, reading one row at a time.

        This streams stores too large for memory (1.28 M samples x 91 rows), opening the file once per row.
        """
        info = self._split(split)
        for name in fields:
            if name not in info.fields and name != "prob":
                raise KeyError(f"Field {name!r} is not recorded in split {split!r}; recorded: {list(info.fields)}.")
        for r in self._committed[split]:
            with self._reading() as f:
                group = f[fmt.SPLITS_GROUP][split]
                out = {}
                for name in fields:
                    if name == "prob":
                        out[name] = np.exp(-group["loss"][int(r)].astype(np.float64))
                    else:
                        out[name] = group[name][int(r)]
                yield out

    # ------------------------------------------------------------------ thumbnails and class names
    def class_names(self, split: str) -> list[str] | None:
        """The split's class names (index = class) when the recorder knew them, else None.

        Raises:
            StoreFormatError: the attribute is not a JSON list of strings.
        """
        self._split(split)
        with self._reading() as f:
            raw = f[fmt.SPLITS_GROUP][split].attrs.get("class_names")
        if raw is None:
            return None
        try:
            names = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
            raise StoreFormatError(f"Split {split!r} of {str(self.path)!r}: attribute 'class_names' is not a JSON "
                                   "list of strings; the file is damaged (the rows are unaffected).")
        return names

    def thumbnail_mask(self, split: str) -> np.ndarray | None:
        """Which ids have a thumbnail, (N,) bool, or None when the split holds no thumbnails.

        Raises:
            StoreFormatError: the thumbnail datasets are damaged (the rows are unaffected).
        """
        info = self._split(split)
        with self._reading() as f:
            group = f[fmt.SPLITS_GROUP][split]
            if "thumbnails" not in group or "has_thumbnail" not in group:
                return None
            ds, has = group["thumbnails"], group["has_thumbnail"]
            ok = (isinstance(ds, h5py.Dataset) and isinstance(has, h5py.Dataset) and ds.dtype == np.uint8
                  and ds.ndim == 4 and ds.shape[0] == info.num_samples and ds.shape[3] in (1, 3)
                  and has.shape == (info.num_samples,) and has.dtype.kind in "bu")
            if not ok:
                raise StoreFormatError(
                    f"Split {split!r} of {str(self.path)!r}: the thumbnail datasets are damaged (thumbnails "
                    f"{getattr(ds, 'dtype', '?')} {getattr(ds, 'shape', '?')}, has_thumbnail "
                    f"{getattr(has, 'shape', '?')}; expected uint8 ({info.num_samples}, h, w, 1 or 3) and "
                    f"({info.num_samples},)). The rows are unaffected.")
            return has[()].astype(bool)

    def thumbnails(self, split: str, ids: np.ndarray | None = None) -> np.ndarray:
        """Thumbnails (K, h, w, C) uint8 of the given ids (all by default); an id without one is all zeros.

        Raises:
            KeyError: the split holds no thumbnails.
            StoreFormatError: the thumbnail datasets are damaged.
        """
        if self.thumbnail_mask(split) is None:
            raise KeyError(f"Split {split!r} of {str(self.path)!r} holds no thumbnails.")
        with self._reading() as f:
            ds = f[fmt.SPLITS_GROUP][split]["thumbnails"]
            if ids is None:
                return ds[()]
            ids = np.asarray(ids, np.int64)
            if ids.size and (ids.min() < 0 or ids.max() >= ds.shape[0]):
                raise KeyError(f"Thumbnail ids must lie in [0, {ds.shape[0]}).")
            order = np.argsort(ids, kind="stable")
            uniq, inverse = np.unique(ids[order], return_inverse=True)
            if uniq.size and uniq[-1] - uniq[0] + 1 == uniq.size:  # a run of ids: one slice
                got = ds[int(uniq[0]):int(uniq[-1]) + 1]
            elif uniq.size > ds.shape[0] // 4:  # many ids: one sequential read beats point selections
                got = ds[()][uniq]
            else:
                got = ds[uniq] if uniq.size else np.zeros((0, *ds.shape[1:]), np.uint8)
            out = np.empty((ids.size, *ds.shape[1:]), np.uint8)
            out[order] = got[inverse]
            return out

    @property
    def pending_rows(self) -> int:
        """Rows that a recorder could not append and parked in side files (``<store>.pending/``).

        They are not part of :meth:`read` until merged: by the recorder's next append or resume, or by
        ``lightning-ddd repair <store>``.
        """
        return len(pending_files(self.path))

    def describe(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary: run, format, splits, rows, fields, metadata."""
        splits = {}
        for name, info in self.split_infos.items():
            rows = self.rows(name)
            targets = self.targets(name)
            coverage = self.read(name, "evaluated").sum(axis=1) if info.num_rows else np.zeros(0, int)
            splits[name] = {**dataclasses.asdict(info), "epochs": rows["epoch"].tolist(),
                            "global_steps": rows["global_step"].tolist(),
                            "evaluated_per_row": [int(c) for c in coverage],
                            "distinct_targets": int(np.unique(targets[targets >= 0]).size)}
        return {"path": str(self.path), "run_name": self.run_name, "run_id": self.run_id,
                "format_version": self.format_version, "created": self.attrs.get("created"),
                "splits": splits, "metadata": self.metadata, "pending_rows": self.pending_rows}


def open_store(path: str | os.PathLike) -> DecisionStore:
    """Open a store, turning low-level failures into :class:`StoreError` with the path named."""
    try:
        return DecisionStore(path)
    except (StoreError, FileNotFoundError, KeyError):
        raise
    except Exception as err:  # noqa: BLE001 - any h5py failure means a damaged file
        raise StoreFormatError(f"Cannot read {str(path)!r}: {err}") from err
