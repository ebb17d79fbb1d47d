"""The epoch buffer: per-sample values kept on the device until the epoch ends.

Each batch appends three small packed tensors (ids, prediction, target; correct, finite, target-ok bits;
loss and margin) to lists, one ``torch.stack`` each: no scatter, no read-back, no Python loop over samples, so the
per-batch
path never synchronises with the host. The epoch holds one entry per presentation (N for a validation
epoch, a few more under DDP padding), never N x classes. Ids are checked, duplicates resolved (the last
presentation is kept) and conflicts detected once, at epoch end, after the single transfer.
"""

from __future__ import annotations

import torch

from lightning_ddd.capture.decisions import Decisions

FLAG_CORRECT = 1
FLAG_NONFINITE = 2
FLAG_BAD_TARGET = 4
FLAG_NOT_PROB = 8


class DeviceBuffer:
    """Per-presentation decisions of one split for one epoch, on one device.

    Args:
        num_samples: N, the size of the split's dataset; valid ids are 0..N-1.
        device: where the buffer lives (the model's device).
    """

    def __init__(self, num_samples: int, device: torch.device) -> None:
        self.num_samples = int(num_samples)
        self.device = torch.device(device)
        self.ints: list[torch.Tensor] = []
        self.bits: list[torch.Tensor] = []
        self.floats: list[torch.Tensor] = []

    def reset(self) -> None:
        """Forget the previous epoch."""
        self.ints.clear()
        self.bits.clear()
        self.floats.clear()

    def add(self, decisions: Decisions, targets: torch.Tensor, ids: torch.Tensor) -> None:
        """Append one batch's decisions (device-side stacking only; no synchronisation).

        Args:
            decisions: the batch's decisions, shape (B,) each.
            targets: (B,) targets as given by the batch (before clamping).
            ids: (B,) sample ids.
        """
        dev = decisions.pred.device
        self.ints.append(torch.stack([
            ids.reshape(-1).to(dev, torch.int64, non_blocking=True), decisions.pred,
            targets.reshape(-1).to(dev, torch.int64, non_blocking=True)], dim=1))
        self.bits.append(torch.stack([decisions.correct, decisions.finite, decisions.target_ok,
                                      decisions.prob_like], dim=1))
        self.floats.append(torch.stack([decisions.loss, decisions.margin, decisions.out_target,
                                        decisions.out_other], dim=1))

    def packed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The epoch as two tensors: (K, 4) int64 [id, pred, target, flags] and (K, 4) float32 [loss, margin,
        target output, largest other output].
        """
        if not self.ints:
            return (torch.zeros((0, 4), dtype=torch.int64, device=self.device),
                    torch.zeros((0, 4), dtype=torch.float32, device=self.device))
        bits = torch.cat(self.bits).long()
        flags = (bits[:, 0] * FLAG_CORRECT + (1 - bits[:, 1]) * FLAG_NONFINITE + (1 - bits[:, 2]) * FLAG_BAD_TARGET
                 + (1 - bits[:, 3]) * FLAG_NOT_PROB)
        return torch.cat([torch.cat(self.ints), flags[:, None]], dim=1), torch.cat(self.floats).float()
