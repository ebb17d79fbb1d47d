"""Recording the training split: each presentation, in train mode, one row per epoch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lightning_ddd import lightning_compat as compat
from lightning_ddd.analysis.dynamics import DynamicsAccumulator
from lightning_ddd.capture.buffer import DeviceBuffer
from lightning_ddd.capture.decisions import compute_decisions, num_classes_of
from lightning_ddd.capture.extract import class_targets
from lightning_ddd.capture.gather import gather_epoch
from lightning_ddd.capture.sampler_ids import SamplerIds
from lightning_ddd.store.format import RowFlag
from lightning_ddd.store.row import Row
from lightning_ddd.with_index import WithIndex


class TrainingSplitHooks:
    """Mixin of ``DecisionRecorderCore``: the ``record_train=True`` hooks."""

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Prepare the training-split buffer (``record_train=True``)."""
        self._train_active = bool(self.record_train) and not getattr(trainer, "fast_dev_run", False)
        if not self._train_active:
            return
        loader = trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if dataset is None or not hasattr(dataset, "__len__"):
            raise ValueError("DecisionRecorder(record_train=True) needs a map-style training dataset with a length.")
        n = len(dataset)
        self._with_index[-1] = isinstance(dataset, WithIndex)
        buf = self._train_buffer
        if buf is None or buf.num_samples != n or buf.device != torch.device(pl_module.device):
            self._train_buffer = DeviceBuffer(n, pl_module.device)
        else:
            buf.reset()
        try:  # at epoch level (after Lightning's set_epoch): copies the epoch's indices to the device once
            self._train_ids = SamplerIds(loader, self._train_buffer.device, allow_distributed_shuffle=True)
        except ValueError as err:  # only an error if the batches carry no ids either
            self._train_ids = err
        self._train_classes = 0

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        """Start capturing forward outputs of this training batch."""
        self._captured = None
        self._capturing = self._train_active

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Record this presentation's decisions (train mode) on the device, by sample id."""
        self._capturing = False
        if not self._train_active:
            return
        captured, self._captured = self._captured, None
        record = self.extract_batch(trainer, pl_module, batch, outputs, captured, -1)
        classes = num_classes_of(record.logits)
        if self._train_classes and classes != self._train_classes:
            raise ValueError(f"Model output changed from {self._train_classes} to {classes} classes within an epoch.")
        self._train_classes = classes
        ids = record.ids
        if ids is None:
            if isinstance(self._train_ids, Exception):
                raise self._train_ids
            ids = self._train_ids.batch(batch_idx)
        targets = class_targets(record.targets, classes)
        self._train_buffer.add(compute_decisions(record.logits, targets), targets, ids)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Gather the epoch's presentations and write one training-split row (a collective)."""
        if not self._train_active or self._train_buffer is None:
            return
        self._train_active = False
        buf = self._train_buffer
        classes = self._num_classes_all_ranks(trainer, self._train_classes)
        if classes == 0:
            return
        arrays = gather_epoch(buf, compat.all_gather(trainer))
        flags = self._check_epoch(arrays, self.train_split, buf.num_samples, classes, repeats_differ=True)
        flags |= RowFlag.TRAIN_PRESENTATIONS | self._read_outputs(arrays, classes, self.train_split)
        row = Row(
            split=self.train_split, global_step=int(trainer.global_step) + self._step_offset,
            epoch=float(trainer.current_epoch + 1) + self._epoch_offset,
            flags=flags, num_classes=classes, evaluated=arrays.evaluated, correct=arrays.correct, pred=arrays.pred,
            targets=arrays.targets, loss=arrays.loss if self.record_loss else None,
            margin=arrays.margin if self.record_margin else None,
            presentations=np.minimum(arrays.presentations, 255).astype(np.uint8),
        )
        self._write(trainer, row)
        self._epochs.setdefault(self.train_split, []).append(row.epoch)
        acc = self._live.get(self.train_split)
        if acc is None or acc.num_samples != buf.num_samples:
            acc = self._live[self.train_split] = DynamicsAccumulator(buf.num_samples, burn_in=0,
                                                                     flip_threshold=self.flip_threshold)
        acc.update(arrays.correct, arrays.evaluated, pred=arrays.pred)

