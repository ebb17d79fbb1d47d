"""Appending the rows parked in side files (``<store>.h5.pending/``) to the store, oldest first.

:class:`SideFileReplay` decides, side file by side file, whether its row goes into the open copy of the store
(copy-on-write, see :mod:`lightning_ddd.store.writer`), is already there, or can never go there (damaged,
another run's, another dataset's, a step that does not come after the store's last row). Refused files stay in
place, named once, and no longer hold back later rows; files are deleted only after the copy holding their
rows has replaced the store.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import h5py

from lightning_ddd.store import format as fmt
from lightning_ddd.store.errors import StoreMismatchError
from lightning_ddd.store.pending import SideFileError, load_side_file, pending_dir, pending_files
from lightning_ddd.store.row_io import append_row, drop_uncommitted, split_complete, validate_row

Outcome = Literal["merged", "duplicate", "gone"] | None
"""What became of one side file: appended, already in the store, merged meanwhile by another writer, or
refused (None; the reason is in :attr:`SideFileReplay.refused`)."""


class SideFileReplay:
    """The side files of one store, and the ones that can never be appended to it.

    Args:
        path: the store.
        run_id: the store's run id (side files of another run are refused).
        float_dtype: the store's dtype of loss and margin.
    """

    def __init__(self, path: Path, run_id: str, float_dtype: str) -> None:
        self.path, self.run_id, self.float_dtype = path, run_id, float_dtype
        self.refused: dict[Path, str] = {}

    def files(self) -> list[Path]:
        """Every side file of the store, oldest step first (refused ones included)."""
        return pending_files(self.path)

    def waiting(self) -> list[Path]:
        """The side files still to be appended, oldest step first."""
        return [p for p in self.files() if p not in self.refused]

    def refused_existing(self) -> dict[Path, str]:
        """Refused side files that still exist, with the reason."""
        return {p: why for p, why in self.refused.items() if p.exists()}

    def append_all(self, f: h5py.File, files: list[Path]) -> dict[Path, Outcome]:
        """Append each side file's row to the open copy ``f``, in order."""
        return {path: self._append_one(f, path) for path in files}

    def forget(self, before: set[Path]) -> None:
        """Forget the refusals decided since ``before`` (inside a copy that was thrown away)."""
        for path in set(self.refused) - before:
            del self.refused[path]

    def _append_one(self, f: h5py.File, path: Path) -> Outcome:
        try:
            row, run_id = load_side_file(path)
            validate_row(row)
        except FileNotFoundError:
            return "gone"
        except (SideFileError, ValueError) as err:
            self.refused[path] = f"unreadable: {err}"
            return None
        if run_id and self.run_id and run_id != self.run_id:
            self.refused[path] = f"parked by another run (id {run_id}; this store's run is {self.run_id})"
            return None
        group = f[fmt.SPLITS_GROUP].get(row.split)
        if group is not None and split_complete(group):
            r = drop_uncommitted(group)
            if r and (int(group["global_step"][r - 1]), float(group["epoch"][r - 1])) == (row.global_step, row.epoch):
                return "duplicate"  # appended before a crash that kept the side file
        try:
            append_row(f, row, self.path, self.float_dtype)
        except StoreMismatchError as err:
            self.refused[path] = str(err)
            return None
        return "merged"

    def drop_appended(self, outcome: dict[Path, Outcome]) -> Path:
        """Delete the side files whose rows are in the store (call only once it has replaced the old one), and
        the emptied folder; returns the folder.
        """
        for path, what in outcome.items():
            if what in ("merged", "duplicate"):
                path.unlink(missing_ok=True)
        folder = pending_dir(self.path)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        return folder

    def announce(self, outcome: dict[Path, Outcome], before: set[Path], folder: Path) -> None:
        """One line for the rows appended, one naming the side files refused since ``before``."""
        merged = sum(what == "merged" for what in outcome.values())
        refused = {p: why for p, why in self.refused.items() if p not in before}
        if merged:
            warnings.warn(f"lightning-ddd: appended {merged} row(s) parked in {str(folder)!r} to {str(self.path)!r} "
                          "before any new row.", stacklevel=4)
        if refused:
            names = "; ".join(f"{p.name}: {why}" for p, why in refused.items())
            warnings.warn(f"lightning-ddd: left {len(refused)} side file(s) in {str(folder)!r} that cannot be "
                          f"appended to {str(self.path)!r} ({names}); move them away once you have checked them.",
                          stacklevel=4)
