"""Per-sample decisions from a batch of logits, computed on the device without synchronising."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F


@dataclasses.dataclass
class Decisions:
    """Per-sample values of one batch, all on the logits' device, shape (B,).

    Attributes:
        correct: bool, top-1 prediction equals the target (False for non-finite logits or bad targets).
        pred: int64 predicted class.
        loss: float32 per-sample cross-entropy (binary: with logits).
        margin: float32 target logit minus the largest other logit (binary: +logit for class 1, -logit for 0).
        finite: bool, all logits of the sample are finite.
        target_ok: bool, the target lies in [0, num_classes).
    """

    correct: torch.Tensor
    pred: torch.Tensor
    loss: torch.Tensor
    margin: torch.Tensor
    finite: torch.Tensor
    target_ok: torch.Tensor


def num_classes_of(logits: torch.Tensor) -> int:
    """Return the number of classes a logits tensor encodes (2 for (B,) or (B, 1) binary logits).

    Raises:
        ValueError: the shape is neither (B,), (B, 1) nor (B, C).
    """
    if logits.ndim == 1 or (logits.ndim == 2 and logits.shape[1] == 1):
        return 2
    if logits.ndim == 2:
        return int(logits.shape[1])
    raise ValueError(
        f"Cannot read decisions from model output of shape {tuple(logits.shape)}: expected logits of shape "
        "(B, C), or (B,) / (B, 1) for binary classification. Override DecisionRecorder.extract_batch "
        "to return such logits."
    )


def compute_decisions(logits: torch.Tensor, targets: torch.Tensor) -> Decisions:
    """Compute correctness, prediction, loss and margin per sample.

    Logits are upcast to float32 first. Targets outside [0, C) are clamped for the computation and
    flagged in ``target_ok``; samples whose loss is not finite (NaN or +inf logits, or a -inf target logit)
    are forced to wrong (``argmax`` would treat NaN as the maximum) and flagged in ``finite``; a -inf logit
    of another class changes nothing and is not flagged. Nothing here reads a value back to the host, and
    the number of operations is kept small: this runs on every batch.

    Args:
        logits: (B, C) multi-class logits, or (B,) / (B, 1) binary logits.
        targets: (B,) integer class indices.

    Returns:
        The batch's :class:`Decisions`.
    """
    num_classes = num_classes_of(logits)
    z = logits.detach().float()
    targets = targets.detach().reshape(-1).long()
    t = targets.clamp(0, num_classes - 1)
    target_ok = t == targets
    if z.ndim == 1 or z.shape[1] == 1:
        z = z.reshape(-1)
        pred = (z > 0).long()
        margin = torch.where(t == 1, z, -z)
        loss = F.softplus(-margin)  # binary cross-entropy with logits
        finite = torch.isfinite(z)
        hit = pred == t
    else:
        pred = z.argmax(dim=1)
        target_logit = z.gather(1, t[:, None]).squeeze(1)
        loss = torch.logsumexp(z, dim=1) - target_logit  # per-sample cross-entropy
        finite = torch.isfinite(loss)
        top2 = z.topk(2, dim=1).values
        hit = pred == t
        margin = target_logit - torch.where(hit, top2[:, 1], top2[:, 0])  # minus the largest other logit
    correct = hit & finite & target_ok
    return Decisions(correct=correct, pred=pred, loss=loss, margin=margin, finite=finite, target_ok=target_ok)
