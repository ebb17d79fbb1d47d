"""The epoch buffer: per-sample values kept on the device until the epoch ends.

One buffer per split holds N entries per field (never N x classes). Each batch writes its values by
sample id with device-side scatter operations; invalid ids go to a spare slot N and are counted in device
flags, so the per-batch path never reads a value back to the host.
"""

from __future__ import annotations

import torch

from lightning_ddd.capture.decisions import Decisions

_I64_MAX = torch.iinfo(torch.int64).max
_I64_MIN = torch.iinfo(torch.int64).min


class DeviceBuffer:
    """Per-sample decisions of one split for one epoch, on one device.

    Args:
        num_samples: N, the size of the split's dataset; valid ids are 0..N-1.
        num_classes: number of classes of the model output.
        device: where the buffer lives (the model's device).
    """

    def __init__(self, num_samples: int, num_classes: int, device: torch.device) -> None:
        self.num_samples = int(num_samples)
        self.num_classes = int(num_classes)
        self.device = torch.device(device)
        n = self.num_samples + 1  # slot N receives rows with invalid ids
        kw = {"device": self.device}
        self.evaluated = torch.zeros(n, dtype=torch.bool, **kw)
        self.correct = torch.zeros(n, dtype=torch.bool, **kw)
        self.pred = torch.zeros(n, dtype=torch.int32, **kw)
        self.target = torch.zeros(n, dtype=torch.int64, **kw)
        self.loss = torch.zeros(n, dtype=torch.float32, **kw)
        self.margin = torch.zeros(n, dtype=torch.float32, **kw)
        self.count = torch.zeros(n, dtype=torch.int32, **kw)
        self.conflict = torch.zeros(n, dtype=torch.int32, **kw)
        self.nonfinite = torch.zeros(n, dtype=torch.bool, **kw)
        self.bad_target = torch.zeros(n, dtype=torch.bool, **kw)
        self.bad_id_count = torch.zeros((), dtype=torch.int64, **kw)
        self.bad_id_min = torch.full((), _I64_MAX, dtype=torch.int64, **kw)
        self.bad_id_max = torch.full((), _I64_MIN, dtype=torch.int64, **kw)

    def reset(self) -> None:
        """Forget the previous epoch (device-side fills only)."""
        for t in (self.evaluated, self.correct, self.pred, self.target, self.loss, self.margin, self.count,
                  self.conflict, self.nonfinite, self.bad_target, self.bad_id_count):
            t.zero_()
        self.bad_id_min.fill_(_I64_MAX)
        self.bad_id_max.fill_(_I64_MIN)

    def add(self, decisions: Decisions, targets: torch.Tensor, ids: torch.Tensor) -> None:
        """Write one batch's decisions by sample id, without synchronising with the host.

        A sample seen again in the same epoch (DistributedSampler padding, repeated presentation) keeps the
        latest values; a repeat whose prediction or target differs is counted in ``conflict``.

        Args:
            decisions: the batch's decisions, shape (B,) each.
            targets: (B,) targets as given by the batch (before clamping).
            ids: (B,) sample ids.
        """
        dev = self.device
        ids = ids.reshape(-1).to(dev, torch.int64, non_blocking=True)
        targets = targets.reshape(-1).to(dev, torch.int64, non_blocking=True)
        valid = (ids >= 0) & (ids < self.num_samples)
        slot = torch.where(valid, ids, torch.full_like(ids, self.num_samples))
        invalid = ~valid
        self.bad_id_count += invalid.sum()
        self.bad_id_min.copy_(torch.minimum(self.bad_id_min, torch.where(invalid, ids, _I64_MAX).min()))
        self.bad_id_max.copy_(torch.maximum(self.bad_id_max, torch.where(invalid, ids, _I64_MIN).max()))
        pred = decisions.pred.to(torch.int32)
        seen = self.evaluated.index_select(0, slot)
        differs = (self.pred.index_select(0, slot) != pred) | (self.target.index_select(0, slot) != targets)
        self.conflict.index_add_(0, slot, (seen & differs).to(torch.int32))
        self.count.index_add_(0, slot, torch.ones_like(slot, dtype=torch.int32))
        self.evaluated.index_fill_(0, slot, True)
        self.correct.index_copy_(0, slot, decisions.correct)
        self.pred.index_copy_(0, slot, pred)
        self.target.index_copy_(0, slot, targets)
        self.loss.index_copy_(0, slot, decisions.loss.float())
        self.margin.index_copy_(0, slot, decisions.margin.float())
        self.nonfinite.index_copy_(0, slot, ~decisions.finite)
        self.bad_target.index_copy_(0, slot, ~decisions.target_ok)
