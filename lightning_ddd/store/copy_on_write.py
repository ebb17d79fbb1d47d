"""How the store file changes: atomically, so that a kill at any moment leaves a whole store.

:func:`create` writes a new, empty store under a temporary name and renames it; :func:`rewrite` hands out a
copy of the store to change, then puts the copy in its place (copy, change, flush, fsync, rename, fsync the
folder). HDF5 changes a file in place, and a kill during an in-place write can leave it half-updated: a
B-tree node split half written can unlink an earlier, committed row's chunk, or the superblock's end-of-file
can lag behind the data. With the copy, a kill leaves either the old store or the new one, both whole;
readers keep reading the file they opened, and a reader holding the store open never blocks a write.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lightning_ddd.store import format as fmt
from lightning_ddd.store.pending import fsync_path


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as strings (the metadata attribute is strict JSON)."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def create(path: Path, attrs: dict[str, object], locking: bool | str) -> None:
    """Create an empty store atomically: written and fsynced under a temporary name, then renamed, so a kill
    during creation leaves either no store or a complete one (the writer removes the temporary files a killed
    creation or change left, before it calls this).

    Args:
        path: the store to create.
        attrs: ``run_name``, ``run_id`` and ``metadata`` (a JSON-able dict) of the store.
        locking: HDF5 file locking.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with h5py.File(tmp, "w", locking=locking) as f:
        f.attrs["format"] = fmt.FORMAT_NAME
        f.attrs["format_version"] = fmt.FORMAT_VERSION
        f.attrs["run_name"] = attrs["run_name"]
        f.attrs["run_id"] = attrs["run_id"]
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        f.attrs["metadata"] = json.dumps(json_safe(attrs["metadata"]), default=str, sort_keys=True, allow_nan=False)
        f.create_group(fmt.SPLITS_GROUP)
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(path.parent)


@contextlib.contextmanager
def rewrite(path: Path, locking: bool | str) -> Iterator[h5py.File]:
    """A copy of the store, open for changes, that replaces the store atomically when the block ends without
    an exception (and is removed when it raises).

    Cost: one copy of the store per change, in the recorder's background writer (about 80 ms for 37 MB: 50,000
    samples x 91 rows with all fields).
    """
    target = path.resolve()
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        shutil.copyfile(target, tmp)
        shutil.copymode(target, tmp)
        with h5py.File(tmp, "a", locking=locking) as f:
            yield f
        fsync_path(tmp)
        os.replace(tmp, target)
        fsync_path(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
