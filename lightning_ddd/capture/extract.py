"""Finding logits, targets and sample ids in a batch and a step's output, by shape, without synchronising."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

TARGET_KEYS = ("label", "labels", "target", "targets", "y")
ID_KEYS = ("index", "idx", "id")
LOGIT_KEYS = ("logits",)

MISSING_IDS_HINT = (
    "Wrap the dataset in lightning_ddd.WithIndex(dataset) so each batch carries its sample ids (this changes the "
    "batch: (x, y) becomes (x, y, index), so a step that unpacks x, y = batch must take the index too), or use "
    "a non-shuffling validation loader."
)
ITERABLE_IDS_HINT = (
    "An IterableDataset has no sampler to tell ids from: yield each sample's id with it (a dict key 'index', "
    "'idx' or 'id', or a third tuple element), and give the dataset a __len__ (the number of samples)."
)


@dataclasses.dataclass
class BatchRecord:
    """What the recorder needs from one batch.

    Attributes:
        logits: (B, C) logits, or (B,) / (B, 1) binary logits.
        targets: (B,) integer targets.
        ids: (B,) integer sample ids, or None to take them from the dataloader's sampler.
        images: optional (B, 1 or 3, H, W) images (float or uint8) for the store's thumbnails.
    """

    logits: torch.Tensor
    targets: torch.Tensor
    ids: torch.Tensor | None = None
    images: torch.Tensor | None = None


def batch_size_of(batch: Any) -> int | None:
    """Return the batch size of a batch (first dimension of its first tensor), or None."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else None
    if isinstance(batch, Mapping):
        for value in batch.values():
            size = batch_size_of(value)
            if size is not None:
                return size
    if isinstance(batch, Sequence) and not isinstance(batch, str) and batch:
        return batch_size_of(batch[0])
    return None


def find_targets(batch: Any) -> torch.Tensor | None:
    """Return the targets of a ``(x, y, ...)`` batch or a dict batch with a target key, else None."""
    if isinstance(batch, Mapping):
        for key in TARGET_KEYS:
            if key in batch and isinstance(batch[key], torch.Tensor):
                return batch[key]
        return None
    if isinstance(batch, Sequence) and not isinstance(batch, str) and len(batch) >= 2:
        if isinstance(batch[1], torch.Tensor):
            return batch[1]
    return None


def find_ids(batch: Any, *, with_index: bool = False) -> torch.Tensor | None:
    """Return the sample ids of a batch, else None.

    Args:
        batch: the batch.
        with_index: the dataset is wrapped in :class:`~lightning_ddd.WithIndex`: the id is its ``index`` key or
            the last tuple element, whatever the other elements are.

    Sources: an ``index``/``idx``/``id`` key; with ``with_index`` the last tuple element; otherwise a third
    tuple element only when it is an integer tensor of shape (B,) (a float or boolean third element, such as
    sample weights or a mask, is not taken for ids).

    Raises:
        ValueError: an id key, or the element ``WithIndex`` adds, is not an integer tensor of shape (B,).
    """
    if isinstance(batch, Mapping):
        for key in ID_KEYS:
            if key in batch:
                return _check_ids(batch[key], batch_size_of(batch), f"batch[{key!r}]")
        return None
    if isinstance(batch, Sequence) and not isinstance(batch, str) and len(batch) >= 3:
        if with_index:
            return _check_ids(batch[-1], batch_size_of(batch[0]), "the element WithIndex added to the batch")
        third = batch[2]
        if _looks_like_ids(third, batch_size_of(batch[0])):
            return third
    return None


def _looks_like_ids(value: Any, batch_size: int | None) -> bool:
    return (isinstance(value, torch.Tensor) and not value.is_floating_point() and not value.is_complex()
            and value.dtype != torch.bool and value.ndim == 1 and (batch_size is None or value.shape[0] == batch_size))


def class_targets(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class-index targets: (B,) or (B, 1) as they are; one-hot or soft (B, C) targets by their argmax.

    Raises:
        ValueError: any other shape.
    """
    if targets.ndim == 2 and targets.shape[1] == num_classes and num_classes > 1:
        return targets.argmax(dim=1)
    if targets.ndim == 1 or (targets.ndim == 2 and targets.shape[1] == 1):
        if targets.is_floating_point():
            return targets.reshape(-1).round().long()
        return targets.reshape(-1)
    raise ValueError(
        f"Targets of shape {tuple(targets.shape)} fit neither class indices (B,) nor one-hot / soft targets "
        f"(B, {num_classes}). Override DecisionRecorder.extract_batch to return class indices."
    )


def _check_ids(ids: Any, batch_size: int | None, where: str) -> torch.Tensor:
    ok = (
        isinstance(ids, torch.Tensor)
        and not ids.is_floating_point()
        and not ids.is_complex()
        and ids.dtype != torch.bool
        and ids.ndim == 1
        and (batch_size is None or ids.shape[0] == batch_size)
    )
    if not ok:
        desc = f"{type(ids).__name__}" + (f" of dtype {ids.dtype} and shape {tuple(ids.shape)}"
                                          if isinstance(ids, torch.Tensor) else "")
        raise ValueError(
            f"Sample ids must be an integer tensor of shape ({batch_size},), but {where} is {desc}. "
            f"{MISSING_IDS_HINT} Or override DecisionRecorder.extract_batch."
        )
    return ids


def logits_from_output(output: Any, batch_size: int | None) -> torch.Tensor | None:
    """Return logits from a step's output: a (B, C) / (B, 1) tensor, or a dict with a ``logits`` key."""
    if isinstance(output, Mapping):
        for key in LOGIT_KEYS:
            if key in output and isinstance(output[key], torch.Tensor):
                return output[key]
        return None
    if isinstance(output, torch.Tensor) and output.ndim == 2:
        if batch_size is None or output.shape[0] == batch_size:
            return output
    return None


def logits_from_forward(output: Any, batch_size: int | None) -> torch.Tensor | None:
    """Return logits from what a module's ``forward`` returned: a tensor, the first element of a tuple or list
    (``(logits, features)``), a dict with ``logits``, or an object with a ``logits`` attribute.
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        return logits_from_output(output, batch_size)
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        first = output[0]
        if first.ndim >= 1 and (batch_size is None or first.shape[0] == batch_size):
            return first
    value = getattr(output, "logits", None)
    return value if isinstance(value, torch.Tensor) else None
