"""The end of one split's epoch: gather every rank once, check, read the outputs, write the row, log summaries.

:class:`EpochEnd` is the step between the split recorder's device buffer and the store session; it owns the
one-time warnings of an epoch's contents (non-finite logits, probabilities read as such, samples presented
more than once, thumbnails left out).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import torch

from lightning_ddd import lightning_compat as compat
from lightning_ddd.capture.gather import EpochArrays
from lightning_ddd.live.summaries import LiveSummaries
from lightning_ddd.recorder.split_recorder import SplitRecorder
from lightning_ddd.recorder.store_session import StoreSession
from lightning_ddd.store.format import RowFlag

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule, Trainer


def classes_all_ranks(trainer: Trainer, local: int) -> int:
    """The largest number of classes any rank saw (a collective under DDP)."""
    if trainer.world_size <= 1:
        return local
    t = torch.tensor([local], dtype=torch.int64, device=trainer.strategy.root_device)
    return int(trainer.strategy.reduce(t, reduce_op="max").item())


class EpochEnd:
    """Turns a split's gathered epoch into a stored row and live summaries.

    Args:
        session: the store session that writes rows (rank 0).
        live: the live summaries.
        outputs: ``"auto"``, ``"logits"`` or ``"probabilities"`` (see ``DecisionRecorder``).
        record_loss: store per-sample losses.
        record_margin: store per-sample margins.
        warn: prints a warning (rank 0).
    """

    def __init__(self, session: StoreSession, live: LiveSummaries, *,
                 outputs: Literal["auto", "logits", "probabilities"], record_loss: bool, record_margin: bool,
                 warn: Callable[[str], Any]) -> None:
        self._session, self._live = session, live
        self._outputs = outputs
        self._record_loss, self._record_margin = record_loss, record_margin
        self._warn = warn
        self._warned_thumbnails: set[str] = set()
        self._warned_repeats: set[str] = set()
        self._warned_probabilities = False

    def finish(self, trainer: Trainer, pl_module: LightningModule, split: SplitRecorder, epoch: float,
               flags: RowFlag, loader: Any) -> None:
        """Gather, check, read, write and summarise one split's epoch (a collective)."""
        classes = classes_all_ranks(trainer, split.num_classes)
        if classes == 0:
            return  # no rank saw a batch of this split (limit_val_batches=0)
        arrays = split.gather(compat.all_gather(trainer))
        flags = split.check(arrays, classes) | flags
        if flags & RowFlag.NONFINITE_LOGITS:
            self._warn(
                f"DecisionRecorder: split {split.name!r} has NaN or infinite logits for {arrays.nonfinite_ids.size} "
                f"samples (ids {arrays.nonfinite_ids[:10].tolist()}); they are recorded as wrong."
            )
        self._warn_repeats(trainer.world_size, split, arrays, epoch)
        flags |= self._read_outputs(split, arrays, classes)
        step, epoch = self._session.row_key(int(trainer.global_step), epoch)
        row = split.row(arrays, classes=classes, global_step=step, epoch=epoch, flags=flags,
                        record_loss=self._record_loss, record_margin=self._record_margin)
        if split.thumb_note and split.name not in self._warned_thumbnails:
            self._warned_thumbnails.add(split.name)
            self._warn(split.thumb_note)
        self._session.write(trainer, row)
        self._live.update(pl_module, split.name, arrays, row.epoch, int(row.flags), train=split.train)
        if not split.train:
            self._live.log_media(trainer, split.name, arrays, loader, self._session.jobs.submit, self._session.path)

    def _read_outputs(self, split: SplitRecorder, a: EpochArrays, classes: int) -> RowFlag:
        """Read the epoch's outputs as probabilities when they are (``outputs="probabilities"``, or ``"auto"``
        and every sample's outputs lie in [0, 1] with softmax rows summing to 1); warn once in ``"auto"``.
        """
        if self._outputs == "logits" or (self._outputs == "auto" and not a.prob_like):
            return RowFlag.NONE
        if not split.read_probabilities(a, classes):
            return RowFlag.NONE
        if self._outputs == "auto" and not self._warned_probabilities:
            self._warned_probabilities = True
            self._warn(
                f"DecisionRecorder: the outputs of split {split.name!r} look like probabilities (all in [0, 1]"
                + ("" if classes == 2 else ", rows summing to 1") + "), not logits; they are read as "
                "probabilities: decision argmax (p > 0.5 for one sigmoid output), loss -log p(target), rows flagged "
                "PROBABILITIES. Pass DecisionRecorder(outputs='logits') if they are logits after all."
            )
        return RowFlag.PROBABILITIES

    def _warn_repeats(self, world_size: int, split: SplitRecorder, a: EpochArrays, epoch: float) -> None:
        """Warn once per split when an epoch presented samples more than once (a sampler with replacement), beyond
        the few duplicates a DistributedSampler pads with: the row keeps each id's last presentation.
        """
        presentations = a.presentations
        if not split.train or split.name in self._warned_repeats:
            return
        repeats = int(presentations.sum() - (presentations > 0).sum())
        if repeats <= max(0, world_size - 1):
            return
        self._warned_repeats.add(split.name)
        self._warn(
            f"DecisionRecorder: split {split.name!r} presented {int((presentations > 1).sum())} samples more than "
            f"once in epoch {epoch:g} (up to {int(presentations.max())} times: a sampler with replacement, such as "
            "WeightedRandomSampler or RandomSampler(replacement=True)). Each row keeps the last presentation of "
            "each id (the store's 'presentations' field counts them all), so forgetting events, data maps and AUM "
            "see one presentation per sample and epoch."
        )
