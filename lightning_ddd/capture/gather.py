"""End-of-epoch gather: the one device-to-host transfer per split and epoch, across DDP ranks.

Ranks may hold different numbers of samples, so sizes are gathered first and every rank pads to the
largest (``LightningModule.all_gather`` aborts on uneven shapes). Every rank receives the merged result, so
live summaries are identical on all ranks; only global rank 0 writes the store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from lightning_ddd.capture.buffer import FLAG_BAD_TARGET, FLAG_CORRECT, FLAG_NONFINITE, FLAG_NOT_PROB, DeviceBuffer


@dataclasses.dataclass
class EpochArrays:
    """One split's epoch on the host, indexed by sample id, shape (N,).

    Attributes:
        evaluated, correct, pred, targets, loss, margin: per-sample values (the last presentation).
        presentations: how often each sample was presented in the epoch (all ranks together).
        conflict_ids: ids presented more than once with different predictions or targets.
        nonfinite_ids: ids whose logits were NaN or infinite.
        bad_target_ids: ids whose target lies outside [0, num_classes).
        bad_ids: ids outside [0, N) (nothing else of them is kept).
        out_target, out_other: the raw output of the target class and the largest other raw output.
        prob_like: every presentation's outputs could be probabilities (see ``Decisions.prob_like``).
    """

    evaluated: np.ndarray
    correct: np.ndarray
    pred: np.ndarray
    targets: np.ndarray
    loss: np.ndarray
    margin: np.ndarray
    presentations: np.ndarray
    conflict_ids: np.ndarray
    nonfinite_ids: np.ndarray
    bad_target_ids: np.ndarray
    bad_ids: np.ndarray
    out_target: np.ndarray | None = None
    out_other: np.ndarray | None = None
    prob_like: bool = False


AllGather = Callable[[torch.Tensor], torch.Tensor]
"""A collective ``all_gather(tensor) -> (world, *tensor.shape)``, e.g. the Trainer's ``strategy.all_gather``."""


def gather_padded(local: torch.Tensor, sizes: list[int], all_gather: AllGather) -> list[torch.Tensor]:
    """Every rank's rows of ``local`` (ranks may hold different numbers: padded to the largest, then cut)."""
    biggest = max(sizes)
    padded = torch.zeros((biggest, local.shape[1]), dtype=local.dtype, device=local.device)
    padded[: local.shape[0]] = local
    parts = all_gather(padded)
    return [parts[i, :s] for i, s in enumerate(sizes)]


def gather_epoch(buffer: DeviceBuffer, all_gather: AllGather | None = None) -> EpochArrays:
    """Collect a buffer from every rank and merge it by sample id (a collective: call on every rank).

    Args:
        buffer: this rank's buffer for the split.
        all_gather: the strategy's collective (``trainer.strategy.all_gather``); None for one process.

    Returns:
        The merged epoch, identical on every rank.
    """
    ints, floats = buffer.packed()
    if all_gather is not None:
        size = torch.tensor([ints.shape[0]], dtype=torch.int64, device=ints.device)
        sizes = [int(s) for s in all_gather(size).reshape(-1).cpu().tolist()]
        ints = torch.cat(gather_padded(ints, sizes, all_gather))
        floats = torch.cat(gather_padded(floats, sizes, all_gather))
    return merge_presentations(buffer.num_samples, ints.cpu().numpy(), floats.cpu().numpy())


def merge_presentations(n: int, ints: np.ndarray, floats: np.ndarray) -> EpochArrays:
    """Merge presentations (rows of [id, pred, target, flags] and [loss, margin]) into per-sample arrays.

    The last presentation of each id is kept; an id presented with different predictions or targets is a
    conflict; ids outside [0, n) are set aside.
    """
    ids = ints[:, 0]
    ok = (ids >= 0) & (ids < n)
    bad_ids = np.unique(ids[~ok])
    ints, floats, ids = ints[ok], floats[ok], ids[ok]
    presentations = np.bincount(ids, minlength=n).astype(np.int64)
    # the last presentation of each id: unique over the reversed order keeps first = last
    rev = ids[::-1]
    uniq, first_in_rev = np.unique(rev, return_index=True)
    last = len(ids) - 1 - first_in_rev
    evaluated = np.zeros(n, bool)
    evaluated[uniq] = True
    pred = np.full(n, -1, np.int64)
    targets = np.full(n, -1, np.int64)
    flags = np.zeros(n, np.int64)
    pred[uniq], targets[uniq], flags[uniq] = ints[last, 1], ints[last, 2], ints[last, 3]
    loss = np.full(n, np.nan, np.float32)
    margin = np.full(n, np.nan, np.float32)
    loss[uniq], margin[uniq] = floats[last, 0], floats[last, 1]
    out_target = np.full(n, np.nan, np.float32)
    out_other = np.full(n, np.nan, np.float32)
    if floats.shape[1] >= 4:
        out_target[uniq], out_other[uniq] = floats[last, 2], floats[last, 3]
    repeated = presentations[ids] > 1
    conflict = np.zeros(n, bool)
    if repeated.any():
        rid = ids[repeated]
        differs = (ints[repeated, 1] != pred[rid]) | (ints[repeated, 2] != targets[rid])
        conflict[rid[differs]] = True
    any_flag = np.zeros(n, np.int64)
    np.bitwise_or.at(any_flag, ids, ints[:, 3])
    return EpochArrays(
        evaluated=evaluated, correct=(flags & FLAG_CORRECT) > 0, pred=pred, targets=targets, loss=loss,
        margin=margin, presentations=presentations, conflict_ids=np.flatnonzero(conflict),
        nonfinite_ids=np.flatnonzero(any_flag & FLAG_NONFINITE),
        bad_target_ids=np.flatnonzero(any_flag & FLAG_BAD_TARGET),
        bad_ids=bad_ids, out_target=out_target, out_other=out_other,
        prob_like=bool(len(ids)) and not bool(np.any(ints[:, 3] & FLAG_NOT_PROB)),
    )
