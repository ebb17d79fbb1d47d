"""One split's recording: where a batch goes, from its logits to the row the store receives.

A :class:`SplitRecorder` serves one validation dataloader or the training split alike: at epoch start it
sizes a device buffer and learns where ids come from (the batch, ``WithIndex``, or a provably ordered
sampler); per batch it turns logits into decisions on the device and appends them by id; at epoch end it
gathers every rank's buffer once, checks the epoch, reads probability outputs as such, and builds the
:class:`~lightning_ddd.store.Row`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lightning_ddd.capture.buffer import DeviceBuffer
from lightning_ddd.capture.decisions import compute_decisions, decisions_from_probabilities, num_classes_of
from lightning_ddd.capture.extract import ITERABLE_IDS_HINT, MISSING_IDS_HINT, BatchRecord, class_targets
from lightning_ddd.capture.gather import AllGather, EpochArrays, gather_epoch
from lightning_ddd.capture.sampler_ids import RecordingSampler, SamplerIds
from lightning_ddd.capture.thumbnails import (
    ThumbnailBuffer,
    ThumbnailOptions,
    dataset_class_names,
    gather_thumbnails,
    size_for_budget,
)
from lightning_ddd.store.format import RowFlag
from lightning_ddd.store.row import Row
from lightning_ddd.with_index import WithIndex


def _some(ids: np.ndarray) -> str:
    return f"{ids[:10].tolist()}{' ...' if ids.size > 10 else ''}"


class SplitRecorder:
    """Records one split for one epoch at a time.

    Args:
        name: the split's name in the store.
        train: the training split (presentations in train mode; repeated ids may differ; a shuffling
            ``DistributedSampler`` is reconstructed exactly).
    """

    def __init__(self, name: str, *, train: bool = False) -> None:
        self.name = name
        self.train = train
        self.buffer: DeviceBuffer | None = None
        self.ids_source: SamplerIds | RecordingSampler | Exception | None = None
        self.with_index = False
        self.num_classes = 0
        self.thumbs: ThumbnailBuffer | None = None
        self.thumb_options: ThumbnailOptions | None = None
        self.thumb_saved: np.ndarray | None = None  # ids whose thumbnail went into a row
        self.thumb_note: str | None = None  # why thumbnails were switched off (for one warning)
        self.epoch_thumbs: tuple[np.ndarray, np.ndarray] | None = None
        self.class_names: list[str] | None = None

    def __getstate__(self) -> dict[str, object]:
        return {"name": self.name, "train": self.train, "buffer": None, "ids_source": None, "with_index": False,
                "num_classes": 0, "thumbs": None, "thumb_options": None, "thumb_saved": None, "thumb_note": None,
                "epoch_thumbs": None, "class_names": None}

    # ------------------------------------------------------------------ epoch start
    def start(self, loader: Any, device: torch.device | str, thumbnails: ThumbnailOptions | None = None,
              class_names: list[str] | None = None) -> None:
        """Prepare for an epoch over ``loader``.

        Args:
            loader: the split's dataloader.
            device: the model's device (where the buffers live).
            thumbnails: keep thumbnails of this split's images until every id has one (None: never).
            class_names: the class names to keep with the split (default: the dataset's ``classes``).

        Raises:
            ValueError: the dataset has no length (the store needs the number of samples).
        """
        dataset = getattr(loader, "dataset", None)
        iterable = isinstance(dataset, torch.utils.data.IterableDataset)
        if dataset is None or not hasattr(dataset, "__len__"):
            kind = "training" if self.train else "validation"
            raise ValueError(
                f"DecisionRecorder needs to know the number of {kind} samples of split {self.name!r}, but its "
                f"{type(dataset).__name__} has no length. "
                + (ITERABLE_IDS_HINT if iterable else "Give the dataset a __len__ (map-style).")
            )
        self.with_index = isinstance(dataset, WithIndex)
        n = len(dataset)
        if self.buffer is None or self.buffer.num_samples != n or self.buffer.device != torch.device(device):
            self.buffer = DeviceBuffer(n, torch.device(device))
        else:
            self.buffer.reset()
        recording = getattr(getattr(loader, "batch_sampler", None), "sampler", None)
        try:  # at epoch level (after Lightning's set_epoch): copies the epoch's indices to the device once
            if isinstance(recording, RecordingSampler):
                self.ids_source = recording  # a shuffling sampler: its indices are recorded as it draws them
            else:
                self.ids_source = SamplerIds(loader, self.buffer.device, allow_distributed_shuffle=self.train)
        except ValueError as err:  # only an error if the batches carry no ids either
            hint = f"DecisionRecorder: batches of split {self.name!r} carry no sample ids. {ITERABLE_IDS_HINT}"
            self.ids_source = ValueError(hint) if iterable else err
        self.num_classes = 0
        self.class_names = class_names or dataset_class_names(dataset)
        if self.thumb_saved is None or self.thumb_saved.size != n:
            self.thumb_saved = np.zeros(n, bool)
        wanted = thumbnails is not None and thumbnails.enabled and self.thumb_note is None
        if wanted and not self.thumb_saved.all():
            if self.thumbs is None or self.thumb_options is not thumbnails:
                assert thumbnails is not None
                self.thumbs = ThumbnailBuffer(thumbnails.size, thumbnails.unnormalize)
                self.thumbs.size = 0  # sized from the first batch's images
            self.thumbs.reset()
        else:
            self.thumbs = None
        self.thumb_options = thumbnails

    def _add_thumbnails(self, images: torch.Tensor, ids: torch.Tensor) -> None:
        assert self.thumbs is not None and self.buffer is not None and self.thumb_options is not None
        if self.thumbs.size == 0:  # the first images: the largest size within the budget
            c, h, w = (int(v) for v in images.shape[1:])
            o = self.thumb_options
            self.thumbs.size = size_for_budget(self.buffer.num_samples, h, w, c, o.size, o.max_mb)
            if self.thumbs.size == 0:
                self.thumb_note = (f"DecisionRecorder: no thumbnails for split {self.name!r}: "
                                   f"{self.buffer.num_samples} images of 8 px exceed "
                                   f"ThumbnailOptions(max_mb={o.max_mb:g}).")
                self.thumbs = None
                return
        self.thumbs.add(images, ids)

    # ------------------------------------------------------------------ per batch
    def add(self, record: BatchRecord, batch_idx: int) -> None:
        """Append one batch's decisions to the device buffer (no host synchronisation).

        Raises:
            ValueError: the number of classes changed, or ids cannot be known.
        """
        assert self.buffer is not None, "start() was not called"
        classes = num_classes_of(record.logits)
        if self.num_classes and classes != self.num_classes:
            raise ValueError(
                f"Model output changed from {self.num_classes} to {classes} classes within one epoch of split "
                f"{self.name!r} (batch {batch_idx}). Override DecisionRecorder.extract_batch."
            )
        self.num_classes = classes
        ids = record.ids
        if ids is None:
            source = self.ids_source
            if isinstance(source, Exception):
                raise source
            if source is None:
                raise ValueError(f"Cannot tell the sample ids of split {self.name!r}. {MISSING_IDS_HINT}")
            ids = source.batch(batch_idx, int(record.logits.shape[0]), self.buffer.device)
        targets = class_targets(record.targets, classes)
        self.buffer.add(compute_decisions(record.logits, targets), targets, ids)
        if self.thumbs is not None and record.images is not None:
            self._add_thumbnails(record.images, ids)

    # ------------------------------------------------------------------ epoch end
    def gather(self, all_gather: AllGather | None) -> EpochArrays:
        """Every rank's presentations merged by id (a collective: call on every rank)."""
        assert self.buffer is not None, "start() was not called"
        arrays = gather_epoch(self.buffer, all_gather)
        self.epoch_thumbs = None
        if self.thumbs is not None:
            self.epoch_thumbs = gather_thumbnails(self.thumbs, self.buffer.device, all_gather)
            self.thumbs.reset()
        return arrays

    def check(self, a: EpochArrays, classes: int) -> RowFlag:
        """Raise on invalid ids, ambiguous ids or targets out of range; flag non-finite logits.

        Raises:
            ValueError: nothing is written for this epoch; the message names the ids.
        """
        n = self.buffer.num_samples if self.buffer is not None else 0
        if a.bad_ids.size:
            raise ValueError(
                f"Split {self.name!r}: ids {_some(a.bad_ids)} lie outside [0, {n}); nothing was written for this "
                f"epoch. Ids must index the dataset. {MISSING_IDS_HINT}"
            )
        if a.conflict_ids.size and not self.train:  # training presentations of one id may differ
            raise ValueError(
                f"Split {self.name!r}: ids {_some(a.conflict_ids)} were seen more than once in one epoch with "
                f"different predictions or targets, so ids do not identify samples; nothing was written for this "
                f"epoch. {MISSING_IDS_HINT}"
            )
        if a.bad_target_ids.size:
            raise ValueError(
                f"Split {self.name!r}: targets of ids {_some(a.bad_target_ids)} lie outside [0, {classes}) for a "
                f"model with {classes} outputs; nothing was written for this epoch. Check the labels or override "
                "DecisionRecorder.extract_batch."
            )
        return RowFlag.NONFINITE_LOGITS if a.nonfinite_ids.size else RowFlag.NONE

    @staticmethod
    def read_probabilities(a: EpochArrays, classes: int) -> bool:
        """Re-read the epoch as probabilities in place (pred for a binary output, loss, margin).

        Returns:
            True (the row is to be flagged ``PROBABILITIES``).
        """
        if a.out_target is None or a.out_other is None:
            return False
        fixed = decisions_from_probabilities(a.out_target, a.out_other, a.targets, classes)
        ev = a.evaluated
        if fixed["pred"] is not None:
            a.pred = np.where(ev, fixed["pred"], a.pred)
            a.correct = ev & (a.pred == a.targets) & np.isfinite(a.loss)
        a.loss = np.where(ev, fixed["loss"], a.loss).astype(np.float32)
        a.margin = np.where(ev, fixed["margin"], a.margin).astype(np.float32)
        return True

    def row(self, a: EpochArrays, *, classes: int, global_step: int, epoch: float, flags: RowFlag,
            record_loss: bool, record_margin: bool) -> Row:
        """The store's row for this epoch."""
        if self.train:
            flags |= RowFlag.TRAIN_PRESENTATIONS
        thumb_ids = thumbs = None
        if self.epoch_thumbs is not None and self.thumb_saved is not None:
            ids, images = self.epoch_thumbs
            ok = (ids >= 0) & (ids < self.thumb_saved.size)
            ids, first = np.unique(ids[ok], return_index=True)
            images = images[ok][first]
            fresh = ~self.thumb_saved[ids]
            thumb_ids, thumbs = ids[fresh], images[fresh]
            self.thumb_saved[thumb_ids] = True
            self.epoch_thumbs = None
        return Row(
            split=self.name, global_step=global_step, epoch=epoch, flags=flags, num_classes=classes,
            evaluated=a.evaluated, correct=a.correct, pred=a.pred, targets=a.targets,
            loss=a.loss if record_loss else None, margin=a.margin if record_margin else None,
            presentations=np.minimum(a.presentations, 255).astype(np.uint8) if self.train else None,
            thumbnail_ids=thumb_ids, thumbnails=thumbs, class_names=self.class_names,
        )

    def release(self) -> None:
        """Free the device buffer and the sampler's indices."""
        self.buffer = None
        self.ids_source = None
        self.thumbs = None
        self.epoch_thumbs = None
