"""Append-only, crash-safe writer of a decision store.

Every change is copy-on-write (:mod:`lightning_ddd.store.copy_on_write`): the store is copied, the row is
written into the copy (data, then its ``committed`` marker), the copy is flushed, fsynced and atomically renamed
over the store, and the folder is fsynced. A kill at any moment leaves either the old store or the new one, both
whole; a reader that holds the file keeps its snapshot and never blocks a write. When the store cannot take a
row (the disk lacks room for the copy, the folder turned read-only), the row is parked in a durable side file
(:mod:`lightning_ddd.store.pending`) and every writer that opens the store later appends the side files first,
in order (:mod:`lightning_ddd.store.replay`); a row that not even a side file can hold stays in memory
(:attr:`StoreWriter.pending_rows`), is retried in order, and is reported by :meth:`StoreWriter.close` and at
interpreter exit if never written.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import warnings
import weakref
from pathlib import Path

import h5py
import numpy as np

from lightning_ddd.store import format as fmt
from lightning_ddd.store.copy_on_write import create, rewrite
from lightning_ddd.store.errors import StoreFormatError, StoreMismatchError, permission_denied
from lightning_ddd.store.pending import pending_dir, save_side_file
from lightning_ddd.store.replay import SideFileReplay
from lightning_ddd.store.row import Row
from lightning_ddd.store.row_io import (
    append_row,
    check_format,
    drop_uncommitted,
    resize,
    split_complete,
    validate_row,
)


class StoreWriter:
    """Writes rows into one HDF5 decision store.

    The writer keeps no file open between calls, so it can be pickled (``ddp_spawn``) and never blocks
    readers for longer than one append.

    Args:
        path: the ``.h5`` file.
        run_name: human-readable run name, stored as a root attribute.
        run_id: unique id of the run, stored as a root attribute; stays the same across resumes.
        metadata: JSON-serialisable run metadata (hyperparameters, versions, ...).
        float_dtype: ``"float32"`` (default) or ``"float16"`` for loss and margin.
        locking: HDF5 file locking for the writer: ``"best-effort"`` (default; locks where the filesystem
            supports it, works where it does not), ``True`` or ``False``.

    Example::

        writer = StoreWriter("ddd/run.h5", run_name="run", run_id="abc")
        writer.open()
        writer.append(row)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        run_name: str,
        run_id: str,
        metadata: dict[str, object] | None = None,
        float_dtype: str = "float32",
        locking: bool | str = "best-effort",
    ) -> None:
        if float_dtype not in ("float32", "float16"):
            raise ValueError(f"float_dtype must be 'float32' or 'float16', got {float_dtype!r}.")
        self.path = Path(path)
        self.run_name = run_name
        self.run_id = run_id
        self.metadata = dict(metadata or {})
        self.float_dtype = float_dtype
        self.locking = locking
        self._held: list[Row] = []
        self._problem: str | None = None
        self._last_in_store: tuple[str, int] | None = None
        self._side_files = SideFileReplay(self.path, run_id, float_dtype)
        _LIVE_WRITERS.add(self)

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        _LIVE_WRITERS.add(self)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ opening
    def _file(self, mode: str) -> h5py.File:
        return h5py.File(self.path, mode, locking=self.locking)

    def _rewrite(self) -> contextlib.AbstractContextManager[h5py.File]:
        return rewrite(self.path, self.locking)

    def open(self) -> dict[str, int]:
        """Create the store, or check an existing one and drop its uncommitted rows; replay side files.

        Returns:
            The number of committed rows per split.

        Raises:
            StoreFormatError: the file exists but is not a decision store, or has a newer format version.
            PermissionError: the folder cannot be written.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PermissionError(
                f"Cannot create the store folder {str(self.path.parent)!r} ({err}). Pass a writable directory to "
                "DecisionRecorder(dirpath=...)."
            ) from err
        if not os.access(self.path.parent, os.W_OK):
            raise PermissionError(
                f"Cannot write the decision store in {str(self.path.parent)!r}: the folder is not writable. "
                "Pass a writable directory to DecisionRecorder(dirpath=...)."
            )
        for stale in self.path.parent.glob(f".{self.path.resolve().name}.tmp-*"):
            stale.unlink(missing_ok=True)  # a copy left by a killed write: the store itself is whole
        if self.path.exists():
            if not os.access(self.path, os.R_OK | os.W_OK):
                raise permission_denied(self.path, "write")
            with self._file("r") as f:
                check_format(f, self.path)
                tidy = any(not split_complete(g) or bool((g["committed"][()] != 1).any())
                           for g in f[fmt.SPLITS_GROUP].values())
            if tidy:  # a store from before copy-on-write writes, killed mid-write
                with self._rewrite() as f:
                    for split in list(f[fmt.SPLITS_GROUP]):
                        if not split_complete(f[fmt.SPLITS_GROUP][split]):
                            del f[fmt.SPLITS_GROUP][split]  # creation was interrupted: no committed row
                        else:
                            drop_uncommitted(f[fmt.SPLITS_GROUP][split])
        else:
            create(self.path, {"run_name": self.run_name, "run_id": self.run_id, "metadata": self.metadata},
                   self.locking)
        self.replay_pending()  # side files first, in order, before any new row
        return self.committed_counts()

    def committed_counts(self) -> dict[str, int]:
        """The number of committed rows per split in the store file."""
        with self._file("r") as f:
            return {s: int(np.sum(g["committed"][()] == 1)) for s, g in f[fmt.SPLITS_GROUP].items()}

    # ------------------------------------------------------------------ reading back
    def last_step(self, split: str) -> int | None:
        """Return the global step of the last committed row of ``split``, or None."""
        with self._file("r") as f:
            group = f[fmt.SPLITS_GROUP].get(split)
            if group is None:
                return None
            committed = group["committed"][()]
            good = np.flatnonzero(committed == 1)
            return int(group["global_step"][good[-1]]) if good.size else None

    def truncate(self, split: str, n_rows: int) -> int:
        """Drop every row of ``split`` after the first ``n_rows``.

        Returns:
            The number of rows dropped.
        """
        with self._file("r") as f:
            group = f[fmt.SPLITS_GROUP].get(split)
            current = 0 if group is None else group["committed"].shape[0]
        if current <= n_rows:
            return 0
        with self._rewrite() as f:
            resize(f[fmt.SPLITS_GROUP][split], n_rows)
        return current - n_rows

    # ------------------------------------------------------------------ appending
    def append(self, row: Row) -> bool:
        """Append one row, committing it only after its data is flushed; never lose it to an I/O failure.

        Where the row goes, in order of preference:

        1. the store, when the disk has room for it (:meth:`needed_bytes`; HDF5 is never written into a
           nearly full disk, where a failed flush can damage the file and crash the process);
        2. a durable side file in ``<store>.pending/`` when the disk is too full for a copy of the store, or
           the store cannot be written (a read-only directory): appended later;
        3. memory, when not even a side file can be written: retried, in order, at every later
           :meth:`append` and by :meth:`retry`.

        Rows always reach the store in order; I/O failures never raise (see :attr:`problem`). A row that is
        only in memory when this method returns is counted by :attr:`pending_rows` and reported by
        :meth:`close` (and at interpreter exit) if it is never written.

        Returns:
            True if the row is in the store, False if it waits in a side file or in memory.

        Raises:
            StoreMismatchError: the row belongs to another dataset, or its step does not advance.
            ValueError: a malformed row or split name.
        """
        validate_row(row)
        self._held.append(row)
        had_problem = self._problem is not None
        self.retry()
        if self._problem is not None and not had_problem:
            warnings.warn(f"lightning-ddd: {self._problem}.", stacklevel=2)
        return not self._held and not self.waiting_files() and self._last_in_store == (row.split, row.global_step)

    def retry(self) -> bool:
        """Move rows held in memory into the store or side files, in order.

        Returns:
            True when no row is held in memory any more.
        """
        while self._held:
            row = self._held[0]
            try:
                stored = self._put(row)
            except BaseException:
                self._held.pop(0)  # a row that can never fit this store (another dataset) must not block others
                raise
            if not stored:
                return False
            self._held.pop(0)
        return True

    @property
    def held_rows(self) -> dict[str, int]:
        """Rows per split that are neither in the store nor in a side file (kept in memory)."""
        out: dict[str, int] = {}
        for row in self._held:
            out[row.split] = out.get(row.split, 0) + 1
        return out

    @property
    def held_steps(self) -> list[int]:
        """Global steps of the rows held in memory, oldest first."""
        return [row.global_step for row in self._held]

    @property
    def pending_rows(self) -> dict[str, int]:
        """Rows not in the store yet: ``{"side_files": n, "memory": m}`` (memory rows die with the process)."""
        return {"side_files": len(self.waiting_files()), "memory": len(self._held)}

    def held(self) -> list[Row]:
        """The rows held in memory, oldest first (for a checkpoint to carry)."""
        return list(self._held)

    def hold(self, rows: list[Row]) -> None:
        """Queue rows (from a checkpoint) before any later row; they are written at the next :meth:`retry`."""
        for row in rows:
            validate_row(row)
        self._held[:0] = rows

    def close(self) -> int:
        """Try once more to write rows held in memory; warn about those that are still nowhere on disk.

        Returns:
            The number of rows still only in memory (lost when the process ends).
        """
        try:
            self.retry()
        except Exception as err:  # noqa: BLE001 - closing reports, it never raises over a row
            warnings.warn(f"lightning-ddd: writing held rows to {str(self.path)!r} failed: {err}", stacklevel=2)
        if self._held:
            warnings.warn(f"lightning-ddd: {_unwritten(self)}", stacklevel=2)
        return len(self._held)

    @property
    def problem(self) -> str | None:
        """The last I/O failure, as a sentence with the free space, or None when the last row went to the store."""
        return self._problem

    def needed_bytes(self, row: Row) -> int:
        """Free space the writer wants before it writes ``row`` into the HDF5 file: the store's size (the
        write goes to a copy), twice the row's raw size, and 4 MiB for HDF5 metadata.
        """
        raw = sum(np.asarray(v).nbytes for v in (*row.sample_fields().values(), *row.extra_arrays().values()))
        raw += np.asarray(row.targets).nbytes
        return self._store_bytes() + 2 * raw + (4 << 20)  # every write goes to a copy of the store first

    def _free_bytes(self) -> int:
        try:
            return shutil.disk_usage(self.path.parent).free
        except OSError:
            return 0

    def _put(self, row: Row) -> bool:
        """Store ``row`` (True), or park it in a side file (True), or fail (False; it stays held)."""
        reason = None
        if not self.replay_pending(quiet=True):
            reason = "earlier rows still wait in side files"
        elif self._free_bytes() < self.needed_bytes(row):
            reason = (f"only {self._free_bytes() / 2**20:.1f} MiB are free on the disk of {str(self.path)!r} "
                      f"(a row needs {self.needed_bytes(row) / 2**20:.1f} MiB)")
        else:
            try:
                with self._rewrite() as f:
                    append_row(f, row, self.path, self.float_dtype)
                self._last_in_store = (row.split, row.global_step)
                self._problem = None
                return True
            except (StoreMismatchError, StoreFormatError):
                raise
            except (OSError, RuntimeError) as err:
                reason = (f"the store is busy ({err})" if self._is_busy(err) else
                          f"writing {str(self.path)!r} failed ({err}; {self._free_bytes() / 2**20:.1f} MiB free)")
        try:
            save_side_file(self.path, row, self.run_id)
        except OSError as err:
            self._problem = (f"{reason}; a side file could not be written either ({err}). The row of split "
                             f"{row.split!r} at step {row.global_step} is kept in memory and retried")
            return False
        self._problem = (f"{reason}; the row of split {row.split!r} at step {row.global_step} is saved in "
                         f"{str(pending_dir(self.path))!r} and is appended when the store can be written (or by "
                         f"`lightning-ddd repair {self.path}`)")
        return True

    @staticmethod
    def _is_busy(err: BaseException) -> bool:
        text = str(err).lower()
        return isinstance(err, BlockingIOError) or "lock" in text or "temporarily unavailable" in text

    # ------------------------------------------------------------------ side files
    def pending_files(self) -> list[Path]:
        """Every side file of the store, oldest step first (including those :attr:`refused_side_files`)."""
        return self._side_files.files()

    def waiting_files(self) -> list[Path]:
        """The side files still to be appended, oldest step first (those this writer refused left out)."""
        return self._side_files.waiting()

    @property
    def refused_side_files(self) -> dict[Path, str]:
        """Side files left in place because they can never be appended to this store, with the reason."""
        return self._side_files.refused_existing()

    def replay_pending(self, quiet: bool = False, announce: bool = True) -> bool:
        """Append the rows parked in side files, oldest first, in one copy-on-write change.

        A side file that can never be appended here (damaged, another run's, another dataset's, a step that
        does not come after the store's last row) is left in place, named in one warning, and no longer holds
        back later rows.

        Args:
            quiet: do not warn when the store cannot be written yet (it is retried later).
            announce: say in one line how many rows were appended and which side files were refused.

        Returns:
            True when no side file waits any more.
        """
        files = self.waiting_files()
        if not files:
            return True
        need = self._store_bytes() + sum(2 * p.stat().st_size for p in files if p.exists()) + (4 << 20)
        if self._free_bytes() < need:
            if not quiet:
                warnings.warn(f"lightning-ddd: {len(files)} row(s) wait in side files to be appended to "
                              f"{str(self.path)!r}, but only {self._free_bytes() / 2**20:.1f} MiB are free.",
                              stacklevel=2)
            return False
        before = set(self._side_files.refused)
        try:
            with self._rewrite() as f:
                outcome = self._side_files.append_all(f, files)
        except (OSError, RuntimeError) as err:
            self._side_files.forget(before)
            if not quiet:
                warnings.warn(f"lightning-ddd: {len(files)} row(s) still wait in side files to be appended to "
                              f"{str(self.path)!r} ({err}).", stacklevel=2)
            return False
        folder = self._side_files.drop_appended(outcome)
        if announce:
            self._side_files.announce(outcome, before, folder)
        return True

    def _store_bytes(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


def _unwritten(writer: StoreWriter) -> str:
    return (f"{len(writer._held)} row(s) for {str(writer.path)!r} (global steps {writer.held_steps}) were never "
            f"written to the store or a side file ({writer.problem}); they are lost when this process ends.")


_LIVE_WRITERS: weakref.WeakSet[StoreWriter] = weakref.WeakSet()


@atexit.register
def _report_unwritten_rows() -> None:
    """At interpreter exit: say which rows of which store only ever lived in memory."""
    for writer in list(_LIVE_WRITERS):
        if writer._held:
            print(f"lightning-ddd: warning: {_unwritten(writer)}", file=sys.stderr, flush=True)
