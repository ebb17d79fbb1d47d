"""Rows that wait outside the store: side files in ``<store>.h5.pending/`` and rows packed as bytes.

A writer parks a row in a side file when the store cannot take it (the disk is too full for a copy of the
store, the folder turned read-only, a reader holds the file); every writer that opens the store later
appends the side files first, in order (:meth:`StoreWriter.replay_pending`), and ``lightning-ddd repair``
(:func:`merge_pending`) does the same by hand. A row that cannot go even into a side file is packed with
:func:`row_to_bytes` into the recorder's checkpoint state, which usually lives on another disk.

Both use one serialisation: a NumPy ``.npz`` archive of the row's arrays plus a JSON ``__meta__`` entry
(split, step, epoch, flags, classes, wall time, class names and the run id of the writer that made it).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ddd.store.format import RowFlag
from lightning_ddd.store.row import Row

SIDE_FILE_SUFFIX = ".npz"


class SideFileError(Exception):
    """A side file that cannot be read back (truncated, not an archive of a row)."""


def pending_dir(path: str | os.PathLike) -> Path:
    """Return the folder that holds rows waiting to be appended to the store at ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".pending")


def pending_files(path: str | os.PathLike) -> list[Path]:
    """The side files of the store at ``path`` that wait to be appended, oldest step first."""
    folder = pending_dir(path)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == SIDE_FILE_SUFFIX)


def side_file_split(path: Path) -> str:
    """The split of a side file, from its name ``<step>-<time_ns>-<split>.npz``."""
    return path.stem.split("-", 2)[-1]


def fsync_path(path: Path) -> None:
    """Flush (fsync) a file's data, or a folder's entries (a rename or unlink in it), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



def _arrays(row: Row, run_id: str | None) -> dict[str, Any]:
    arrays: dict[str, Any] = dict(row.sample_fields())
    arrays.update(row.extra_arrays())
    arrays["targets"] = row.targets
    meta = {"split": row.split, "global_step": row.global_step, "epoch": row.epoch, "flags": int(row.flags),
            "num_classes": row.num_classes, "wall_time": row.wall_time, "class_names": row.class_names,
            "run_id": run_id}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return arrays


def _row(data: Any) -> tuple[Row, str | None]:
    meta = json.loads(data["__meta__"].tobytes().decode())
    arrays = {k: data[k] for k in data.files if k != "__meta__"}
    row = Row(split=meta["split"], global_step=int(meta["global_step"]), epoch=float(meta["epoch"]),
              flags=RowFlag(meta["flags"]), num_classes=int(meta["num_classes"]),
              wall_time=float(meta["wall_time"]), class_names=meta.get("class_names"), **arrays)
    return row, meta.get("run_id")


def row_to_bytes(row: Row, run_id: str | None = None) -> bytes:
    """Pack a row (compressed) for a checkpoint: plain ``bytes``, which ``torch.load(weights_only=True)`` reads."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **_arrays(row, run_id))
    return buf.getvalue()


def row_from_bytes(data: bytes) -> tuple[Row, str | None]:
    """Unpack :func:`row_to_bytes`: the row and the run id it was recorded by.

    Raises:
        SideFileError: the bytes are not a packed row.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return _row(archive)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise SideFileError(f"not a packed row ({err})") from None


def save_side_file(store: str | os.PathLike, row: Row, run_id: str | None) -> Path:
    """Write ``row`` durably into the store's side-file folder (written, fsynced, renamed, folder fsynced).

    Raises:
        OSError: the side file could not be written (nothing is left behind).
    """
    folder = pending_dir(store)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{row.global_step:015d}-{time.time_ns()}-{row.split}{SIDE_FILE_SUFFIX}"
    tmp = folder / (name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **_arrays(row, run_id))
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise
    final = folder / name
    os.replace(tmp, final)
    fsync_path(folder)
    return final


def load_side_file(path: Path) -> tuple[Row, str | None]:
    """Read a side file back: the row and the run id of the writer that parked it (None in older files).

    Raises:
        FileNotFoundError: another writer merged it meanwhile.
        SideFileError: the file is damaged.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            return _row(data)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise SideFileError(f"damaged ({err})") from None


@dataclasses.dataclass(frozen=True)
class MergeResult:
    """What :func:`merge_pending` did.

    Attributes:
        merged: rows appended to the store.
        waiting: side files that could not be merged yet (the store is busy or the disk lacks room).
        refused: side files left in place because they can never be appended here, with the reason.
    """

    merged: int
    waiting: int
    refused: tuple[tuple[str, str], ...] = ()


def merge_pending(path: str | os.PathLike) -> MergeResult:
    """Merge the rows parked in ``<store>.pending/`` into the store (``lightning-ddd repair``).

    Refused while a live recorder claims the store (it merges them itself at its next append or at the end
    of fit).

    Raises:
        StoreLockedError: a live recorder on this host claims the store.
        StoreFormatError: the store is damaged.
    """
    import h5py

    from lightning_ddd.store.errors import StoreLockedError
    from lightning_ddd.store.lock import live_claim
    from lightning_ddd.store.validate import check_store
    from lightning_ddd.store.writer import StoreWriter

    path = Path(path)
    holder = live_claim(path)
    if holder:
        raise StoreLockedError(f"{str(path)!r} is being recorded by {holder}; that recorder merges its pending rows "
                               "itself. Run repair after it has finished.")
    with h5py.File(path, "r", locking=False) as f:
        checked = check_store(f, repr(str(path)))
    writer = StoreWriter(path, run_name=str(checked.attrs.get("run_name", path.stem)),
                         run_id=str(checked.attrs.get("run_id", "")))
    before = len(writer.pending_files())
    writer.replay_pending(quiet=True, announce=False)
    refused = tuple((p.name, why) for p, why in writer.refused_side_files.items())
    left = len(writer.pending_files())
    return MergeResult(merged=before - left, waiting=left - len(refused), refused=refused)
