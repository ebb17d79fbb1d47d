"""Per-sample decisions from a batch of logits, computed on the device without synchronising."""

from __future__ import annotations

import dataclasses

import numpy as np
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
        out_target: float32 raw output of the target class (binary: the raw output itself).
        out_other: float32 largest raw output of another class (binary: NaN, which marks a single output).
        prob_like: bool, the sample's outputs could be probabilities (all in [0, 1]; rows of a multi-class
            output also sum to 1): the epoch is read as probabilities when every sample's are.
    """

    correct: torch.Tensor
    pred: torch.Tensor
    loss: torch.Tensor
    margin: torch.Tensor
    finite: torch.Tensor
    target_ok: torch.Tensor
    out_target: torch.Tensor
    out_other: torch.Tensor
    prob_like: torch.Tensor


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
        out_target, out_other = z, torch.full_like(z, float("nan"))  # NaN: one output, not two classes
        prob_like = (z >= 0) & (z <= 1)
    else:
        pred = z.argmax(dim=1)
        target_logit = z.gather(1, t[:, None]).squeeze(1)
        loss = torch.logsumexp(z, dim=1) - target_logit  # per-sample cross-entropy
        finite = torch.isfinite(loss)
        top2 = z.topk(2, dim=1).values
        hit = pred == t
        out_other = torch.where(hit, top2[:, 1], top2[:, 0])
        margin = target_logit - out_other  # minus the largest other logit
        out_target = target_logit
        prob_like = (top2[:, 0] <= 1) & (z.amin(dim=1) >= 0) & ((z.sum(dim=1) - 1).abs() <= 1e-3)
    correct = hit & finite & target_ok
    return Decisions(correct=correct, pred=pred, loss=loss, margin=margin, finite=finite, target_ok=target_ok,
                     out_target=out_target, out_other=out_other, prob_like=prob_like)


def decisions_from_probabilities(out_target: np.ndarray, out_other: np.ndarray, targets: np.ndarray,
                                 num_classes: int) -> dict[str, np.ndarray]:
    """Re-read one epoch whose outputs were probabilities (rows of a softmax; a sigmoid for binary outputs).

    The model's decision is the argmax (the same as for logits) or, for a binary output, ``p > 0.5`` (not
    ``> 0``); loss is ``-log p(target)`` and margin ``log p(target) - log p(largest other)`` (the logit
    margin of the same model), so that every recorded field means what it means for logits.

    Args:
        out_target: (N,) raw output of the target class (binary: the output, p(class 1)).
        out_other: (N,) largest raw output of another class; NaN for a single (binary) output.
        targets: (N,) targets (-1 where not evaluated).
        num_classes: classes of the output (2 for binary).

    Returns:
        ``pred`` (binary only; None otherwise), ``loss``, ``margin`` as numpy arrays.
    """
    tiny = np.float32(1e-38)
    p = np.asarray(out_target, np.float64)
    evaluated = np.asarray(targets) >= 0
    if num_classes == 2 and np.isnan(np.asarray(out_other)[evaluated]).all():
        pred = (p > 0.5).astype(np.int64)
        p_target = np.where(targets == 1, p, 1 - p)
        p_other = 1 - p_target
    else:
        pred = None
        p_target, p_other = p, np.asarray(out_other, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = -np.log(np.maximum(p_target, tiny))
        margin = np.log(np.maximum(p_target, tiny)) - np.log(np.maximum(p_other, tiny))
    return {"pred": pred, "loss": loss.astype(np.float32), "margin": margin.astype(np.float32)}
