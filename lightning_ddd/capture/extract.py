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
    "Wrap the dataset in lightning_ddd.WithIndex(dataset) so each batch carries its sample ids, or use a "
    "non-shuffling validation loader."
)


@dataclasses.dataclass
class BatchRecord:
    """What the recorder needs from one batch.

    Attributes:
        logits: (B, C) logits, or (B,) / (B, 1) binary logits.
        targets: (B,) integer targets.
        ids: (B,) integer sample ids, or None to take them from the dataloader's sampler.
    """

    logits: torch.Tensor
    targets: torch.Tensor
    ids: torch.Tensor | None = None


def _batch_size(batch: Any) -> int | None:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else None
    if isinstance(batch, Mapping):
        for value in batch.values():
            size = _batch_size(value)
            if size is not None:
                return size
    if isinstance(batch, Sequence) and not isinstance(batch, str) and batch:
        return _batch_size(batch[0])
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


def find_ids(batch: Any) -> torch.Tensor | None:
    """Return the sample ids of a batch (``index``/``idx``/``id`` key or third tuple element), else None.

    Raises:
        ValueError: a third tuple element exists but is not an integer tensor of shape (B,).
    """
    if isinstance(batch, Mapping):
        for key in ID_KEYS:
            if key in batch:
                return _check_ids(batch[key], _batch_size(batch), f"batch[{key!r}]")
        return None
    if isinstance(batch, Sequence) and not isinstance(batch, str) and len(batch) >= 3:
        return _check_ids(batch[2], _batch_size(batch[0]), "the third element of the batch")
    return None


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


def batch_size_of(batch: Any) -> int | None:
    """Return the batch size of a batch (first dimension of its first tensor), or None."""
    return _batch_size(batch)
