"""Sample ids from a dataloader's own sampler: computed in advance when its order is known (sequential, or a
distributed sampler), recorded as it draws them when it shuffles (:class:`RecordingSampler`).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import BatchSampler, DistributedSampler, Sampler, SequentialSampler
from typing_extensions import override

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

    def batch(self, batch_idx: int, size: int | None = None, device: torch.device | None = None) -> torch.Tensor:
        """Return the ids of batch ``batch_idx`` (a device tensor slice; no synchronisation)."""
        if batch_idx + 1 >= len(self.offsets):
            raise IndexError(f"Batch {batch_idx} is beyond the {len(self.offsets) - 1} batches of the sampler.")
        return self.indices[self.offsets[batch_idx]: self.offsets[batch_idx + 1]]


class RecordingSampler(Sampler):
    """Wraps a loader's sampler and remembers, in order, the indices it yields (in the main process, with or
    without workers), so a shuffled loader's sample ids are known without changing the batch.

    The batch sampler draws indices from it batch by batch, in the order the batches arrive (a DataLoader
    returns batches in order); :meth:`batch` takes the next ``size`` of them. Each new pass over the sampler
    (a new epoch, or after a partial one such as a sanity check) starts afresh.

    Args:
        inner: the sampler to wrap; every other attribute (``set_epoch``, ``shuffle``, ...) is the inner one's.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.drawn: collections.deque[int] = collections.deque()

    @override
    def __iter__(self) -> Iterator[Any]:
        self.drawn.clear()
        for index in self.inner:
            self.drawn.append(int(index))
            yield index

    def __len__(self) -> int:
        return len(self.inner)

    def __getattr__(self, name: str) -> Any:
        if name in ("inner", "drawn"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def batch(self, batch_idx: int, size: int, device: torch.device) -> torch.Tensor:
        """The ids of the next batch of ``size`` samples (copied to ``device`` without synchronising).

        Raises:
            ValueError: fewer indices were drawn than the batch holds (batches that do not come from this
                sampler, e.g. a loader iterated elsewhere).
        """
        if len(self.drawn) < size:
            raise ValueError(f"Batch {batch_idx} holds {size} samples but its sampler yielded only {len(self.drawn)} "
                             f"more indices; the batches do not come from this loader's sampler. {MISSING_IDS_HINT}")
        ids = torch.tensor([self.drawn.popleft() for _ in range(size)], dtype=torch.int64)
        if device.type == "cuda":
            return ids.pin_memory().to(device, non_blocking=True)
        return ids.to(device)


def record_sampler_ids(loader: Any) -> RecordingSampler | None:
    """Wrap the sampler of a loader whose sample order is not known in advance (it shuffles, or is of a class
    that may) in a :class:`RecordingSampler`, once; returns it (None when the order is known, or the loader has
    no torch ``BatchSampler`` whose sampler can be watched).
    """
    batch_sampler = getattr(loader, "batch_sampler", None)
    if batch_sampler is None or type(batch_sampler) is not BatchSampler:
        return None
    if isinstance(getattr(loader, "dataset", None), torch.utils.data.IterableDataset):
        return None  # its sampler yields no indices
    current = batch_sampler.sampler
    if isinstance(current, RecordingSampler):
        return current
    if _shuffles(current) is False:
        return None  # SamplerIds knows the order exactly, before any batch
    recorder = RecordingSampler(current)
    batch_sampler.sampler = recorder
    return recorder
