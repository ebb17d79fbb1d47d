"""One row into an open store file: the split group (created with its ``fields`` attribute last), the row's
data, thumbnails and targets, then its ``committed`` marker. The writer (:mod:`lightning_ddd.store.writer`)
calls these inside its copy-on-write change; they know nothing of copies, side files or retries.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lightning_ddd.store import format as fmt
from lightning_ddd.store.errors import StoreFormatError, StoreMismatchError
from lightning_ddd.store.row import Row
from lightning_ddd.store.validate import check_split_name, check_store

_FILL: dict[str, Any] = {f.name: f.fill for f in fmt.SAMPLE_FIELDS}


def _text_attr(value: object) -> object:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def split_complete(group: h5py.Group) -> bool:
    """Whether a split group's creation completed (its ``fields`` attribute, written last, exists).

    A complete group that lacks a dataset or attribute is damage, refused by :func:`check_store`; only an
    incomplete one (a kill during its creation; it never held a committed row) may be dropped.
    """
    return "fields" in group.attrs


def check_format(f: h5py.File, path: Path) -> None:
    """Refuse a file that is not a whole store, saying that nothing was written to it."""
    try:
        check_store(f, repr(str(path)))
    except StoreFormatError as err:
        raise StoreFormatError(
            f"{err} Nothing was written to it: choose another run name or directory, or move the file away."
        ) from None


def drop_uncommitted(group: h5py.Group) -> int:
    """Drop rows after the last committed one; returns the number of committed rows."""
    committed = group["committed"][()]
    good = np.flatnonzero(committed == 1)
    keep = int(good[-1]) + 1 if good.size else 0
    # committed rows always form a prefix: the writer drops the tail before appending
    if keep != committed.shape[0]:
        resize(group, keep)
    return keep

def resize(group: h5py.Group, n_rows: int) -> None:
    """Resize every per-row dataset of the group to ``n_rows`` rows."""
    for ds in group.values():
        if isinstance(ds, h5py.Dataset) and ds.maxshape and ds.maxshape[0] is None:
            ds.resize(n_rows, axis=0)


def validate_row(row: Row) -> None:
    """Refuse a row whose arrays do not fit its split (shapes, thumbnails), naming the field."""
    check_split_name(row.split)
    n = row.num_samples
    for name, value in row.sample_fields().items():
        if value.shape != (n,):
            raise ValueError(f"Row field {name!r} has shape {value.shape}, expected ({n},).")
    if row.targets.shape != (n,):
        raise ValueError(f"Row targets have shape {row.targets.shape}, expected ({n},).")
    extra = row.extra_arrays()
    if extra:
        ids, images = extra["thumbnail_ids"], extra["thumbnails"]
        if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] not in (1, 3)
                or ids.shape != (images.shape[0],) or (ids.size and (ids.min() < 0 or ids.max() >= n))):
            raise ValueError(f"Row thumbnails must be uint8 (K, h, w, 1 or 3) with K ids in [0, {n}); got "
                             f"{images.dtype} {images.shape} and ids of shape {ids.shape}.")


def split_group(f: h5py.File, row: Row, float_dtype: str) -> h5py.Group:
    """The row's split group, created (its ``fields`` attribute last) when missing or half-created."""
    splits = f[fmt.SPLITS_GROUP]
    if row.split in splits:
        if split_complete(splits[row.split]):
            return splits[row.split]
        del splits[row.split]  # creation was interrupted: it holds no committed row
    n = row.num_samples
    group = splits.create_group(row.split)
    group.create_dataset("ids", data=np.arange(n, dtype=np.int64))
    group.create_dataset("targets", data=np.full(n, -1, dtype=np.int64))
    for value in fmt.ROW_VALUES:
        group.create_dataset(value.name, shape=(0,), maxshape=(None,), dtype=value.dtype, chunks=(1024,))
    chunk = (1, min(n, fmt.CHUNK_SAMPLES))
    for name in row.sample_fields():
        field = fmt.SAMPLE[name]
        group.create_dataset(
            name, shape=(0, n), maxshape=(None, n), dtype=fmt.sample_dtype(field, row.num_classes,
                                                                           float_dtype),
            chunks=chunk, compression=fmt.COMPRESSION, compression_opts=fmt.COMPRESSION_LEVEL,
            shuffle=field.dtype == "float", fillvalue=field.fill,
        )
    group.attrs["num_classes"] = row.num_classes
    group.attrs["kind"] = "train" if row.flags & fmt.RowFlag.TRAIN_PRESENTATIONS else "validation"
    group.attrs["num_samples"] = n
    group.attrs["fields"] = json.dumps(sorted(row.sample_fields()))  # last: marks the group complete
    return group


def append_row(f: h5py.File, row: Row, path: Path, float_dtype: str) -> None:
    """Write ``row`` into the open store ``f`` (data, then its ``committed`` marker).

    Raises:
        StoreMismatchError: the row belongs to another dataset, records other fields, or does not come after
            the last committed row.
    """
    if _text_attr(f.attrs.get("format")) != fmt.FORMAT_NAME:  # fully checked by open(); a cheap re-check here
        check_format(f, path)
    group = split_group(f, row, float_dtype)
    n = int(group.attrs["num_samples"])
    if row.num_samples != n:
        raise StoreMismatchError(
            f"Split {row.split!r} of {str(path)!r} holds {n} samples, but this row has "
            f"{row.num_samples}: the store belongs to another dataset. Use another run name or directory."
        )
    fields = set(json.loads(group.attrs["fields"]))
    if set(row.sample_fields()) != fields:
        raise StoreMismatchError(
            f"Split {row.split!r} of {str(path)!r} records fields {sorted(fields)}, but this row has "
            f"{sorted(row.sample_fields())}. Keep the recorder's options the same within a run."
        )
    r = drop_uncommitted(group)
    if r:
        last = (int(group["global_step"][r - 1]), float(group["epoch"][r - 1]))
        if (row.global_step, row.epoch) <= last:  # equal steps: validations within one accumulation window
            raise StoreMismatchError(
                f"Row of split {row.split!r} at global step {row.global_step} (epoch {row.epoch:g}) does not "
                f"come after the last committed row (step {last[0]}, epoch {last[1]:g}) of {str(path)!r}."
            )
    merge_targets(group, row, path)
    put_thumbnails(group, row)
    resize(group, r + 1)
    ev = row.evaluated.astype(bool)
    for name, value in row.sample_fields().items():
        ds = group[name]
        if name != "evaluated":
            value = np.where(ev, value, _FILL[name])
        ds[r] = np.asarray(value).astype(ds.dtype, copy=False)
    group["global_step"][r] = row.global_step
    group["epoch"][r] = row.epoch
    group["flags"][r] = int(row.flags)
    group["wall_time"][r] = row.wall_time or time.time()
    f.flush()
    group["committed"][r] = 1
    f.flush()


def put_thumbnails(group: h5py.Group, row: Row) -> None:
    """Keep the first thumbnail of each id (``thumbnails`` (N, h, w, C) uint8, then ``has_thumbnail`` (N,)
    bool, written after the images) and the class names; a later row's thumbnails of another size are
    ignored.
    """
    if row.class_names is not None and "class_names" not in group.attrs:
        group.attrs["class_names"] = json.dumps([str(c) for c in row.class_names])
    extra = row.extra_arrays()
    if not extra or not extra["thumbnail_ids"].size:
        return
    ids, images = extra["thumbnail_ids"].astype(np.int64), extra["thumbnails"]
    n = int(group.attrs["num_samples"])
    if "thumbnails" not in group:
        h, w, c = images.shape[1:]
        group.create_dataset("has_thumbnail", data=np.zeros(n, bool))
        group.create_dataset("thumbnails", shape=(n, h, w, c), dtype="uint8", chunks=(min(n, 64), h, w, c),
                             compression=fmt.COMPRESSION, compression_opts=fmt.COMPRESSION_LEVEL)
    ds, has_ds = group["thumbnails"], group["has_thumbnail"]
    if ds.shape[1:] != images.shape[1:]:
        return
    has = has_ds[()].astype(bool)
    ids, first = np.unique(ids, return_index=True)
    images = images[first]
    new = ~has[ids]
    ids, images = ids[new], images[new]
    if not ids.size:
        return
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1  # contiguous runs of ids: one slice write each
    for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, ids.size]):
        ds[ids[lo]:ids[hi - 1] + 1] = images[lo:hi]
    has[ids] = True
    has_ds[...] = has


def merge_targets(group: h5py.Group, row: Row, path: Path) -> None:
    """Fill the split's targets from the row; refuse targets that differ from those stored."""
    stored = group["targets"][()]
    ev = row.evaluated.astype(bool)
    new = np.asarray(row.targets, dtype=np.int64)
    clash = ev & (stored >= 0) & (stored != new)
    if clash.any():
        ids = np.flatnonzero(clash)
        raise StoreMismatchError(
            f"Targets of split {row.split!r} differ from those already in {str(path)!r} for "
            f"{ids.size} samples (ids {ids[:10].tolist()}{'...' if ids.size > 10 else ''}): the store "
            "belongs to another dataset or the dataset order changed. Use another run name or directory."
        )
    fresh = ev & (stored < 0)
    if fresh.any():
        stored[fresh] = new[fresh]
        group["targets"][...] = stored
