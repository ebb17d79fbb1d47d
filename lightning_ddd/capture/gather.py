"""End-of-epoch gather: the one device-to-host transfer per split and epoch, across DDP ranks.

Ranks may hold different numbers of samples, so sizes are gathered first and every rank pads to the
largest (``LightningModule.all_gather`` aborts on uneven shapes). Every rank receives the merged result, so
live summaries are identical on all ranks; only global rank 0 writes the store.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.distributed as dist

from lightning_ddd.capture.buffer import DeviceBuffer

_INT_COLS = ("id", "pred", "target", "correct", "conflict", "nonfinite", "bad_target", "count")
_FLOAT_COLS = ("loss", "margin")


@dataclasses.dataclass
class EpochArrays:
    """One split's epoch on the host, indexed by sample id, shape (N,).

    Attributes:
        evaluated, correct, pred, targets, loss, margin, presentations: merged per-sample values.
        conflict_ids: ids seen more than once with different predictions or targets.
        nonfinite_ids: ids whose logits were NaN or infinite.
        bad_target_ids: ids whose target lies outside [0, num_classes).
        bad_id_count: number of rows whose id was outside [0, N).
        bad_id_range: (min, max) of those ids, or None.
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
    bad_id_count: int
    bad_id_range: tuple[int, int] | None


def _world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def _gather_padded(local: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    width = local.shape[1]
    biggest = max(sizes)
    padded = torch.zeros((biggest, width), dtype=local.dtype, device=local.device)
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return [p[:s] for p, s in zip(parts, sizes)]


def gather_epoch(buffer: DeviceBuffer) -> EpochArrays:
    """Collect a buffer from every rank and merge it by sample id (a collective: call on every rank).

    Args:
        buffer: this rank's buffer for the split.

    Returns:
        The merged epoch, identical on every rank.
    """
    n = buffer.num_samples
    idx = torch.nonzero(buffer.evaluated[:n]).squeeze(1)
    ints = torch.stack([
        idx, buffer.pred[idx].long(), buffer.target[idx], buffer.correct[idx].long(), buffer.conflict[idx].long(),
        buffer.nonfinite[idx].long(), buffer.bad_target[idx].long(), buffer.count[idx].long(),
    ], dim=1)
    floats = torch.stack([buffer.loss[idx], buffer.margin[idx]], dim=1)
    flags = torch.stack([buffer.bad_id_count, buffer.bad_id_min, buffer.bad_id_max])
    world = _world_size()
    if world > 1:
        size = torch.tensor([ints.shape[0]], dtype=torch.int64, device=ints.device)
        sizes_t = [torch.empty_like(size) for _ in range(world)]
        dist.all_gather(sizes_t, size)
        sizes = [int(s.item()) for s in sizes_t]
        ints_parts = _gather_padded(ints, sizes)
        float_parts = _gather_padded(floats, sizes)
        flag_parts = _gather_padded(flags[None, :], [1] * world)
        ints_np = torch.cat(ints_parts).cpu().numpy()
        floats_np = torch.cat(float_parts).cpu().numpy()
        flags_np = torch.cat(flag_parts).cpu().numpy()
        bad_count = int(flags_np[:, 0].sum())
        bad_min, bad_max = int(flags_np[:, 1].min()), int(flags_np[:, 2].max())
    else:
        ints_np, floats_np = ints.cpu().numpy(), floats.cpu().numpy()
        bad_count, bad_min, bad_max = (int(v) for v in flags.cpu().numpy())
    return _merge(n, ints_np, floats_np, bad_count, (bad_min, bad_max) if bad_count else None)


def _merge(n: int, ints: np.ndarray, floats: np.ndarray, bad_count: int,
           bad_range: tuple[int, int] | None) -> EpochArrays:
    cols = {name: ints[:, i] for i, name in enumerate(_INT_COLS)}
    ids = cols["id"]
    evaluated = np.zeros(n, dtype=bool)
    evaluated[ids] = True
    pred = np.full(n, -1, dtype=np.int64)
    targets = np.full(n, -1, dtype=np.int64)
    # an id held by several ranks (padding) must agree: compare each occurrence with the value kept
    pred[ids] = cols["pred"]
    targets[ids] = cols["target"]
    cross = (pred[ids] != cols["pred"]) | (targets[ids] != cols["target"])
    conflict = np.zeros(n, dtype=bool)
    conflict[ids[cross | (cols["conflict"] > 0)]] = True
    correct = np.zeros(n, dtype=bool)
    correct[ids] = cols["correct"].astype(bool)
    loss = np.full(n, np.nan, dtype=np.float32)
    margin = np.full(n, np.nan, dtype=np.float32)
    loss[ids] = floats[:, 0]
    margin[ids] = floats[:, 1]
    presentations = np.zeros(n, dtype=np.int64)
    np.add.at(presentations, ids, cols["count"])
    nonfinite = np.zeros(n, dtype=bool)
    nonfinite[ids[cols["nonfinite"] > 0]] = True
    bad_target = np.zeros(n, dtype=bool)
    bad_target[ids[cols["bad_target"] > 0]] = True
    return EpochArrays(
        evaluated=evaluated, correct=correct, pred=pred, targets=targets, loss=loss, margin=margin,
        presentations=presentations, conflict_ids=np.flatnonzero(conflict),
        nonfinite_ids=np.flatnonzero(nonfinite), bad_target_ids=np.flatnonzero(bad_target),
        bad_id_count=bad_count, bad_id_range=bad_range,
    )
