"""Sample ids from a non-shuffling validation dataloader's own batch sampler."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import BatchSampler, DistributedSampler, SequentialSampler

from lightning_ddd.capture.extract import MISSING_IDS_HINT
from lightning_ddd.lightning_compat import wrapped_sampler


def _shuffles(sampler: Any) -> bool | None:
    """True if the sampler shuffles, False if it provably does not, None if unknown.

    Only torch's own classes count (``type(...) is``): a subclass may reorder whatever its name says.
    """
    if type(sampler) is SequentialSampler:
        return False
    if isinstance(sampler, DistributedSampler):
        if getattr(sampler, "shuffle", True):
            return True
        inner = wrapped_sampler(sampler)  # Lightning's DistributedSamplerWrapper around a custom sampler
        if inner is not None:
            return _shuffles(inner)
        return False if type(sampler).__iter__ is DistributedSampler.__iter__ else None
    return None


class SamplerIds:
    """The dataset indices a dataloader yields, batch by batch, computed once per epoch.

    Iterating a sequential or non-shuffling distributed batch sampler draws no random numbers, so this
    does not change the run.

    A shuffling ``DistributedSampler`` (the one Lightning injects for training under DDP) is reconstructed
    exactly too when ``allow_distributed_shuffle`` is set: its order is a function of its seed and epoch
    (``set_epoch``), rank, world size, and drop_last, and iterating it draws from no global generator.

    Args:
        dataloader: the dataloader (after Lightning injected its DistributedSampler).
        device: where the flat index tensor lives.
        allow_distributed_shuffle: accept a shuffling DistributedSampler (training split).

    Raises:
        ValueError: the loader shuffles, or its sampler is unknown, so ids cannot be known without the batch.
    """

    def __init__(self, dataloader: Any, device: torch.device, *, allow_distributed_shuffle: bool = False) -> None:
        batch_sampler = getattr(dataloader, "batch_sampler", None)
        sampler = getattr(dataloader, "sampler", None)
        inner = getattr(batch_sampler, "sampler", sampler)
        shuffles = _shuffles(inner)
        if allow_distributed_shuffle and type(inner) is DistributedSampler:
            shuffles = False  # exact: a function of seed, epoch, rank, world size and drop_last
        custom_batches = batch_sampler is not None and type(batch_sampler) is not BatchSampler
        if batch_sampler is None or shuffles is not False or custom_batches:
            why = ("it has no batch sampler" if batch_sampler is None else
                   f"its batch sampler {type(batch_sampler).__name__} is not torch's BatchSampler, so its batches "
                   "cannot be known without drawing them" if custom_batches else
                   "its sampler shuffles" if shuffles else f"its sampler {type(inner).__name__} may shuffle")
            raise ValueError(f"Cannot tell the sample ids of this dataloader: {why}. {MISSING_IDS_HINT}")
        batches = [list(b) for b in batch_sampler]
        self.offsets = [0]
        for b in batches:
            self.offsets.append(self.offsets[-1] + len(b))
        flat = [i for b in batches for i in b]
        self.indices = torch.tensor(flat, dtype=torch.int64).to(device)

    def batch(self, batch_idx: int) -> torch.Tensor:
        """Return the ids of batch ``batch_idx`` (a device tensor slice; no synchronisation)."""
        if batch_idx + 1 >= len(self.offsets):
            raise IndexError(f"Batch {batch_idx} is beyond the {len(self.offsets) - 1} batches of the sampler.")
        return self.indices[self.offsets[batch_idx]: self.offsets[batch_idx + 1]]
