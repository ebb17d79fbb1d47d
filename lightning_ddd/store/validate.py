"""The invariants of a decision store, checked in one place by every reader and writer.

:func:`check_store` is called once per open by :class:`~lightning_ddd.store.DecisionStore` and by the
writer, so a damaged file is refused everywhere with one :class:`StoreFormatError` that names the file and
the damage, instead of a crash deep inside h5py or numpy, or a split that silently disappears.

The invariants (documented in ``docs/store-format.md``):

* root attributes: ``format`` is the string ``"lightning-ddd-store"``; ``format_version`` an integer not
  above :data:`~lightning_ddd.store.format.FORMAT_VERSION`; ``run_name`` / ``run_id`` strings when present;
  ``metadata`` a JSON object with finite numbers only;
* ``splits`` is a group, every entry a group with a valid split name (:func:`check_split_name`);
* a split group without its ``fields`` attribute is a creation that was interrupted (it never held a
  committed row) and is skipped; with it, the group must be whole: integer attributes ``num_samples`` >= 0
  and ``num_classes`` >= 1, ``fields`` a JSON list of known field names holding ``evaluated``, ``correct``
  and ``pred``, ``kind`` ``"validation"`` or ``"train"``;
* datasets ``ids`` and ``targets`` of shape (N,) and integer type; one-dimensional row datasets
  (``global_step``, ``epoch``, ``flags``, ``wall_time``, ``committed``) and two-dimensional per-sample
  datasets of shape (rows, N), each of the expected type;
* ``committed`` holds only 0 and 1, and every committed row lies within every row and per-sample dataset
  (a kill during a resize may leave datasets of different lengths, but only in rows that were never
  committed).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import h5py
import numpy as np

from lightning_ddd.store import format as fmt
from lightning_ddd.store.errors import StoreFormatError

SAMPLE_FIELDS = tuple(f.name for f in fmt.SAMPLE_FIELDS)
"""Every per-sample field a split may record (from :data:`lightning_ddd.store.format.SAMPLE_FIELDS`)."""

REQUIRED_FIELDS = tuple(f.name for f in fmt.SAMPLE_FIELDS if f.required)

_SAMPLE_KINDS = {f.name: f.kinds for f in fmt.SAMPLE_FIELDS}
_ROW_KINDS = {f.name: f.kinds for f in fmt.ROW_VALUES}
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$")


def check_split_name(name: object) -> str:
    """Return ``name`` if it can name a split, else raise.

    A split name becomes an HDF5 group name, a file-name part and a logged metric key, so it must be 1 to
    100 characters of letters, digits, ``_``, ``-`` and ``.``, not starting with ``.`` or ``-``.

    Raises:
        ValueError: the name is not a string or holds other characters (``/``, ``..``, spaces, markup).
    """
    if not isinstance(name, str) or not _SPLIT_NAME.match(name) or ".." in name:
        raise ValueError(
            f"Split name {name!r} is not allowed: use 1 to 100 letters, digits, '_', '-' or '.' (no '/', '..', "
            "spaces or markup), not starting with '.' or '-'."
        )
    return name


@dataclasses.dataclass(frozen=True)
class CheckedSplit:
    """What :func:`check_store` found in one complete split group.

    Attributes:
        name: split name.
        kind: ``"validation"`` or ``"train"``.
        num_samples: N.
        num_classes: classes of the model output.
        fields: per-sample fields recorded.
        committed: positions of committed rows, ascending.
    """

    name: str
    kind: str
    num_samples: int
    num_classes: int
    fields: tuple[str, ...]
    committed: np.ndarray


@dataclasses.dataclass(frozen=True)
class CheckedStore:
    """Root attributes and complete splits of a store that passed :func:`check_store`.

    Attributes:
        attrs: root attributes, bytes decoded.
        metadata: the parsed metadata object.
        splits: complete splits by name.
    """

    attrs: dict[str, object]
    metadata: dict[str, object]
    splits: dict[str, CheckedSplit]


def _scalar_int(value: Any) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu":
        return int(value)
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def _reject_constant(name: str) -> float:
    raise ValueError(f"holds {name}")


def parse_metadata(raw: Any, where: str) -> dict[str, object]:
    """Parse the ``metadata`` attribute: a JSON object with finite numbers.

    Raises:
        StoreFormatError: not text, not JSON, not an object, or holds NaN / Infinity.
    """
    text = _text(raw)
    if text is None:
        raise StoreFormatError(f"{where}: the 'metadata' attribute is not text (a JSON object is expected); "
                               "the file is damaged.")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as err:
        raise StoreFormatError(f"{where}: the 'metadata' attribute is not valid JSON ({err}); the file is "
                               "damaged.") from None
    if not isinstance(value, dict):
        raise StoreFormatError(f"{where}: the 'metadata' attribute is JSON {type(value).__name__}, not an object; "
                               "the file is damaged.")
    return value


def _check_root(f: h5py.File, where: str) -> tuple[dict[str, object], dict[str, object]]:
    if _text(f.attrs.get("format")) != fmt.FORMAT_NAME:
        raise StoreFormatError(f"{where} is an HDF5 file but not a lightning-ddd decision store (no 'format' "
                               f"attribute {fmt.FORMAT_NAME!r}).")
    version = _scalar_int(f.attrs.get("format_version"))
    if version is None or version < 1:
        raise StoreFormatError(f"{where}: the 'format_version' attribute is {f.attrs.get('format_version')!r}, not a "
                               "positive integer; the file is damaged.")
    if version > fmt.FORMAT_VERSION:
        raise StoreFormatError(f"{where} has store format version {version}; this lightning-ddd reads up to "
                               f"{fmt.FORMAT_VERSION}. Upgrade lightning-ddd (pip install -U lightning-ddd).")
    attrs: dict[str, object] = {}
    for key, value in f.attrs.items():
        attrs[key] = value.decode(errors="replace") if isinstance(value, bytes) else value
    attrs["format_version"] = version
    for key in ("run_name", "run_id", "created"):
        if key in f.attrs and _text(f.attrs[key]) is None:
            raise StoreFormatError(f"{where}: the {key!r} attribute is not text; the file is damaged.")
    metadata = parse_metadata(f.attrs.get("metadata", "{}"), where)
    if f.get(fmt.SPLITS_GROUP, getclass=True) is not h5py.Group:
        raise StoreFormatError(f"{where}: '{fmt.SPLITS_GROUP}' is missing or not a group; the file is damaged.")
    return attrs, metadata


def _dataset(group: h5py.Group, name: str, where: str) -> h5py.Dataset:
    if group.get(name, getclass=True) is not h5py.Dataset:
        raise StoreFormatError(f"{where}: dataset {name!r} is missing or not a dataset; the file is damaged.")
    return group[name]


def _split_attributes(group: h5py.Group, here: str) -> tuple[int, int, list[str], str]:
    """The split's ``num_samples``, ``num_classes``, ``fields`` and ``kind`` attributes, each checked."""
    n = _scalar_int(group.attrs.get("num_samples"))
    if n is None or n < 0:
        raise StoreFormatError(f"{here}: the 'num_samples' attribute is {group.attrs.get('num_samples')!r}, not a "
                               "non-negative integer; the file is damaged.")
    classes = _scalar_int(group.attrs.get("num_classes"))
    if classes is None or classes < 1:
        raise StoreFormatError(f"{here}: the 'num_classes' attribute is {group.attrs.get('num_classes')!r}, not a "
                               "positive integer; the file is damaged.")
    try:
        fields = json.loads(_text(group.attrs["fields"]) or "")
    except ValueError:
        fields = None
    if not isinstance(fields, list) or not all(isinstance(x, str) and x in SAMPLE_FIELDS for x in fields) or \
            not set(REQUIRED_FIELDS) <= set(fields):
        raise StoreFormatError(f"{here}: the 'fields' attribute is {group.attrs['fields']!r}, not a JSON list of "
                               f"fields from {list(SAMPLE_FIELDS)} with {list(REQUIRED_FIELDS)}; the file is damaged.")
    kind = _text(group.attrs.get("kind", "validation"))
    if kind not in ("validation", "train"):
        raise StoreFormatError(f"{here}: the 'kind' attribute is {group.attrs.get('kind')!r}, not 'validation' or "
                               "'train'; the file is damaged.")
    return n, classes, fields, str(kind)


def _dataset_lengths(group: h5py.Group, here: str, n: int, fields: list[str]) -> dict[str, int]:
    """Check every dataset's shape and type; the number of rows of each per-row and per-sample dataset."""
    for key in ("ids", "targets"):
        ds = _dataset(group, key, here)
        if ds.shape != (n,) or ds.dtype.kind not in "iu":
            raise StoreFormatError(f"{here}: dataset {key!r} has shape {ds.shape} and type {ds.dtype}; expected ({n},) "
                                   "integers; the file is damaged.")
    lengths = {}
    for key, kinds in _ROW_KINDS.items():
        ds = _dataset(group, key, here)
        if ds.ndim != 1 or ds.dtype.kind not in kinds:
            raise StoreFormatError(f"{here}: dataset {key!r} has shape {ds.shape} and type {ds.dtype}; expected one "
                                   "value per row; the file is damaged.")
        lengths[key] = ds.shape[0]
    for key in fields:
        ds = _dataset(group, key, here)
        if ds.ndim != 2 or ds.shape[1] != n or ds.dtype.kind not in _SAMPLE_KINDS[key]:
            raise StoreFormatError(f"{here}: dataset {key!r} has shape {ds.shape} and type {ds.dtype}; expected "
                                   f"(rows, {n}); the file is damaged.")
        lengths[key] = ds.shape[0]
    return lengths


def _check_split(name: str, group: h5py.Group, where: str) -> CheckedSplit | None:
    here = f"{where}, split {name!r}"
    if "fields" not in group.attrs:
        return None  # creation interrupted before it completed: never held a committed row
    n, classes, fields, kind = _split_attributes(group, here)
    lengths = _dataset_lengths(group, here, n, fields)
    committed_values = group["committed"][()]
    if committed_values.size and not np.isin(committed_values, (0, 1)).all():
        raise StoreFormatError(f"{here}: dataset 'committed' holds values other than 0 and 1; the file is damaged.")
    committed = np.flatnonzero(committed_values == 1)
    shortest = min(lengths, key=lengths.get)  # type: ignore[arg-type]
    if committed.size and committed[-1] >= lengths[shortest]:
        raise StoreFormatError(
            f"{here}: dataset {shortest!r} has {lengths[shortest]} rows but {committed.size} rows are committed "
            f"(up to row {int(committed[-1])}); the file is damaged. Rows before {lengths[shortest]} can be "
            "recovered with h5py."
        )
    return CheckedSplit(name=name, kind=kind, num_samples=n, num_classes=classes, fields=tuple(fields),
                        committed=committed)


def check_store(f: h5py.File, where: str) -> CheckedStore:
    """Check every invariant of an open store.

    Args:
        f: the open HDF5 file.
        where: how to name the file in messages (its path, quoted).

    Returns:
        The root attributes, metadata and complete splits.

    Raises:
        StoreFormatError: the first broken invariant, naming the file and the damage.
    """
    attrs, metadata = _check_root(f, where)
    splits: dict[str, CheckedSplit] = {}
    group = f[fmt.SPLITS_GROUP]
    for name in group:
        try:
            check_split_name(name)
        except ValueError:
            raise StoreFormatError(f"{where}: split {name!r} has a name lightning-ddd never writes; the file is "
                                   "damaged or was written by something else.") from None
        if group.get(name, getclass=True) is not h5py.Group:
            raise StoreFormatError(f"{where}: '{fmt.SPLITS_GROUP}/{name}' is not a group; the file is damaged.")
        checked = _check_split(name, group[name], where)
        if checked is not None:
            splits[name] = checked
    return CheckedStore(attrs=attrs, metadata=metadata, splits=splits)
