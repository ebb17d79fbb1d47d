"""The recorder's implementation, shared by the ``lightning.pytorch`` and ``pytorch_lightning`` callbacks.

Data flows one way: a forward hook and the batch-end hook capture logits, targets and ids (on the
device) -> :class:`~lightning_ddd.capture.buffer.DeviceBuffer` -> one gather per split at epoch end ->
:class:`~lightning_ddd.store.StoreWriter` on global rank 0 -> live summaries through ``self.log``.
"""

from __future__ import annotations

import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_ddd import lightning_compat as compat
from lightning_ddd.analysis.dynamics import DynamicsAccumulator
from lightning_ddd.capture.buffer import DeviceBuffer
from lightning_ddd.capture.decisions import compute_decisions, decisions_from_probabilities, num_classes_of
from lightning_ddd.capture.extract import (
    ITERABLE_IDS_HINT,
    MISSING_IDS_HINT,
    BatchRecord,
    batch_size_of,
    class_targets,
    find_ids,
    find_targets,
    logits_from_forward,
    logits_from_output,
)
from lightning_ddd.capture.gather import EpochArrays, gather_epoch
from lightning_ddd.capture.sampler_ids import SamplerIds
from lightning_ddd.live.wandb_media import WandbMedia
from lightning_ddd.recorder.background import BackgroundJobs
from lightning_ddd.recorder.live_logging import LiveLogging
from lightning_ddd.recorder.store_session import StoreSession
from lightning_ddd.recorder.training_split import TrainingSplitHooks
from lightning_ddd.store.format import RowFlag
from lightning_ddd.store.lock import StoreLock
from lightning_ddd.store.row import Row
from lightning_ddd.store.validate import check_split_name
from lightning_ddd.store.writer import StoreWriter
from lightning_ddd.with_index import WithIndex

_PRECISIONS = ("float32", "float16")


class DecisionRecorderCore(StoreSession, TrainingSplitHooks, LiveLogging):
    """Framework-independent body of ``DecisionRecorder``; see :class:`lightning_ddd.DecisionRecorder`."""

    _pl: types.ModuleType  # lightning.pytorch or pytorch_lightning, set by the concrete subclass

    def __init__(
        self,
        dirpath: str | Path = "ddd",
        *,
        run_name: str | None = None,
        splits: list[str] | None = None,
        module: str | None = None,
        record_loss: bool = True,
        record_margin: bool = True,
        precision: str = "float32",
        log_summaries: bool = True,
        log_prefix: str = "ddd",
        burn_in: int | None = None,
        flip_threshold: int = 1,
        overwrite: bool = False,
        locking: bool | str = "best-effort",
        wandb_media: bool = True,
        wandb_table_rows: int = 100,
        wandb_table_every_n_epochs: int = 10,
        wandb_artifact_max_mb: float = 200.0,
        thumbnail_unnormalize: tuple[list[float], list[float]] | None = None,
        record_train: bool = False,
        train_split: str = "train",
        pending_timeout: float = 30.0,
        outputs: str = "auto",
    ) -> None:
        if precision not in _PRECISIONS:
            raise ValueError(
                f"DecisionRecorder(precision=...) must be one of {_PRECISIONS}, got {precision!r}. "
                "Use 'float16' to halve the size of loss and margin."
            )
        if outputs not in ("auto", "logits", "probabilities"):
            raise ValueError(
                f"DecisionRecorder(outputs=...) must be 'auto', 'logits' or 'probabilities', got {outputs!r}.")
        if locking not in (True, False, "best-effort"):
            raise ValueError(f"DecisionRecorder(locking=...) must be True, False or 'best-effort', got {locking!r}.")
        if splits is not None and (not isinstance(splits, (list, tuple)) or not all(isinstance(s, str) for s in splits)
                                   or len(set(splits)) != len(splits)):
            raise ValueError(f"DecisionRecorder(splits=...) must be a list of distinct names, got {splits!r}.")
        for name in [*(splits or []), train_split]:
            try:
                check_split_name(name)
            except ValueError as err:
                raise ValueError(f"DecisionRecorder: {err}") from None
        if (burn_in is not None and burn_in < 0) or flip_threshold < 1:
            raise ValueError(
                f"DecisionRecorder needs burn_in >= 0 and flip_threshold >= 1, got {burn_in} and {flip_threshold}."
            )
        self.dirpath = Path(dirpath)
        self.run_name = run_name
        self.splits = list(splits) if splits is not None else None
        self.module = module
        self.record_loss = record_loss
        self.record_margin = record_margin
        self.precision = precision
        self.log_summaries = log_summaries
        self.log_prefix = log_prefix
        self.burn_in = burn_in
        self.flip_threshold = flip_threshold
        self.overwrite = overwrite
        self.locking = locking
        self.wandb_media = wandb_media
        self.wandb_table_rows = wandb_table_rows
        self.wandb_table_every_n_epochs = wandb_table_every_n_epochs
        self.wandb_artifact_max_mb = wandb_artifact_max_mb
        self.thumbnail_unnormalize = thumbnail_unnormalize
        self.record_train = record_train
        self.train_split = train_split
        self.pending_timeout = float(pending_timeout)
        self.outputs = outputs
        self._media = WandbMedia(wandb_table_rows, thumbnail_unnormalize, wandb_artifact_max_mb)
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        self._writer: StoreWriter | None = None
        self._lock: StoreLock | None = None
        self._store_path: Path | None = None
        self._resolved_run_name: str | None = None
        self._run_id: str | None = None
        self._restored: dict[str, Any] = {}
        self._checkpoint_state: dict[str, Any] | None = None
        self._step_offset = 0
        self._epoch_offset = 0.0
        self._created_store = False
        self._rows: dict[str, int] = {}
        self._last_step: dict[str, int] = {}
        self._hook: Any = None
        self._captured: Any = None
        self._last_output: Any = None
        self._forward_calls = 0
        self._warned_calls = False
        self._with_index: dict[int, bool] = {}
        self._capturing = False
        self._recording = False
        self._buffers: dict[int, DeviceBuffer] = {}
        self._train_buffer: DeviceBuffer | None = None
        self._train_ids: SamplerIds | Exception | None = None
        self._train_classes = 0
        self._train_active = False
        self._sampler_ids: dict[int, SamplerIds | Exception] = {}
        self._num_classes: dict[int, int] = {}
        self._live: dict[str, DynamicsAccumulator] = {}
        self._epochs: dict[str, list[float]] = {}
        self._media_failed = False
        self._warned_probabilities = False
        self._table_pending: dict[str, tuple[Any, EpochArrays]] = {}
        self._media_calls: dict[str, int] = {}
        self._jobs = BackgroundJobs()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_hook", "_captured", "_last_output", "_buffers", "_sampler_ids", "_train_buffer", "_train_ids"):
            state[key] = {} if key in ("_buffers", "_sampler_ids") else None
        return state

    # ------------------------------------------------------------------ public properties
    @property
    def state_key(self) -> str:
        """Key of the recorder's state in checkpoints: class name, run name, splits and the name of the store
        folder (its last component only, never the whole path, so a run whose folder moved still resumes).
        Two recorders in one Trainer differ in at least one of these."""
        return (f"DecisionRecorder{{'run_name': {self.run_name!r}, 'splits': {self.splits!r}, "
                f"'folder': {self.dirpath.name!r}, 'train': {self.record_train!r}}}")

    @property
    def store_path(self) -> Path | None:
        """The store being written, once resolved (at fit or validate start)."""
        return self._store_path

    def split_name(self, dataloader_idx: int, num_dataloaders: int) -> str:
        """Name of the split of a validation dataloader: ``splits[i]``, ``"val"`` or ``"val_<i>"``."""
        if self.splits is not None:
            if dataloader_idx >= len(self.splits):
                raise ValueError(
                    f"DecisionRecorder(splits={self.splits!r}) names {len(self.splits)} splits, but there are "
                    f"{num_dataloaders} validation dataloaders. Name one split per dataloader."
                )
            return self.splits[dataloader_idx]
        return "val" if num_dataloaders == 1 else f"val_{dataloader_idx}"

    # ------------------------------------------------------------------ overridable extraction
    def extract_batch(
        self,
        trainer: Any,
        pl_module: Any,
        batch: Any,
        outputs: Any,
        captured: Any,
        dataloader_idx: int,
    ) -> BatchRecord:
        """Return the logits, targets and (optionally) sample ids of one batch.

        Override this for batches or outputs the defaults do not understand, the way one extends
        Lightning's ``BasePredictionWriter``. It runs on every batch: do not move values to the host.

        Defaults: logits from ``outputs`` (a (B, C) tensor or a dict with ``"logits"``), else from the
        forward hook (the first output of ``pl_module`` or the ``module`` named in the constructor during
        this batch); targets from ``batch[1]`` or a dict key ``label``/``labels``/``target``/``targets``/``y``;
        ids from an ``index``/``idx``/``id`` key or an integer third tuple element, else (``ids=None``) from
        the dataloader's non-shuffling sampler.

        Args:
            trainer: the Trainer.
            pl_module: the LightningModule.
            batch: the batch as given to ``validation_step``.
            outputs: what ``validation_step`` returned.
            captured: the output captured by the forward hook, or None.
            dataloader_idx: index of the validation dataloader.

        Returns:
            A :class:`~lightning_ddd.capture.extract.BatchRecord`.
        """
        size = batch_size_of(batch)
        logits = logits_from_output(outputs, size)
        if logits is None:
            logits = logits_from_forward(captured, size)
            calls = self._forward_calls - (1 if captured is not None and self._last_output_is(outputs) else 0)
            if calls > 1 and not self._warned_calls:
                self._warned_calls = True
                where = f"submodule {self.module!r}" if self.module else "the LightningModule"
                self._pl.utilities.rank_zero_warn(
                    f"DecisionRecorder: {where} was called {calls} times in one validation step (test-time "
                    "augmentation, an ensemble, a model calling itself?); the first call's output is recorded. To "
                    "record the step's own decision, return its logits from validation_step (a (B, C) tensor or "
                    "{'logits': ...})."
                )
        if logits is None:
            where = f"submodule {self.module!r}" if self.module else "the LightningModule"
            raise ValueError(
                f"DecisionRecorder found no logits for a validation batch: validation_step returned "
                f"{type(outputs).__name__} and no call of {where} was seen. Call self(x) in validation_step, "
                "name the classifier with DecisionRecorder(module='...'), return the logits (or a dict with "
                "'logits'), or override DecisionRecorder.extract_batch."
            )
        targets = find_targets(batch)
        if targets is None:
            raise ValueError(
                f"DecisionRecorder found no targets in a batch of type {type(batch).__name__}: expected (x, y, ...) "
                "or a dict with one of 'label', 'labels', 'target', 'targets', 'y'. Override "
                "DecisionRecorder.extract_batch for other layouts."
            )
        return BatchRecord(logits=logits, targets=targets,
                           ids=find_ids(batch, with_index=self._with_index.get(dataloader_idx, False)))

    # ------------------------------------------------------------------ helpers: trainer state
    def _fn(self, trainer: Any) -> str:
        fn = trainer.state.fn
        return str(getattr(fn, "value", fn))

    def _val_loaders(self, trainer: Any) -> list[Any]:
        loaders = compat.validation_loaders(trainer, self._fn(trainer) == "validate")
        if loaders is None:
            return []
        if isinstance(loaders, dict):
            return list(loaders.values())
        return list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]

    def _num_val_batches(self, trainer: Any) -> list[float]:
        return list(trainer.num_val_batches)  # the full validation run, never the sanity-limited one

    def _sanity_complete(self, trainer: Any) -> bool:
        wanted = trainer.num_sanity_val_steps
        return all(wanted >= b for b in self._num_val_batches(trainer))

    def _decide_recording(self, trainer: Any) -> tuple[bool, str]:
        """Whether this validation run is recorded, and why not (for an info message)."""
        if getattr(trainer, "fast_dev_run", False):
            return False, "fast_dev_run is on"
        before = any(self._rows.values())
        if trainer.sanity_checking:
            if trainer.global_step != 0 or self._restored:
                return False, "sanity check of a resumed run"
            if not self._sanity_complete(trainer):
                return False, "partial sanity check (set Trainer(num_sanity_val_steps=-1) to record epoch 0)"
            if before:
                return False, "the before-training row is already recorded"
            return True, ""
        if self._fn(trainer) == "validate":
            if not self._validate_records(trainer) or before:
                return False, ("trainer.validate() of trained weights is not appended to a training trajectory "
                               "(only the untrained network's, as epoch 0)")
            return True, ""
        return True, ""

    @staticmethod
    def _validate_records(trainer: Any) -> bool:
        """``trainer.validate()`` records only the untrained network (global step 0, no checkpoint)."""
        return trainer.global_step == 0 and getattr(trainer, "ckpt_path", None) is None

    def _row_position(self, trainer: Any) -> tuple[float, RowFlag]:
        if trainer.sanity_checking:
            return 0.0, RowFlag.BEFORE_TRAINING
        if self._fn(trainer) == "validate":
            return 0.0, RowFlag.BEFORE_TRAINING | RowFlag.VALIDATE_CALL
        last, batch_idx = compat.training_position(trainer)
        if last:
            return float(trainer.current_epoch + 1), RowFlag.NONE
        total = trainer.num_training_batches
        done = batch_idx + 1
        frac = done / total if isinstance(total, (int, float)) and 0 < total < float("inf") else 0.0
        return float(trainer.current_epoch + frac), RowFlag.MID_EPOCH

    # ------------------------------------------------------------------ hooks (called by the subclasses)
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Check the Lightning internals the recorder needs; register the forward hook on the LightningModule
        or the named submodule."""
        compat.check_trainer(trainer)
        if self._hook is not None:
            return
        target = pl_module
        if self.module:
            try:
                target = pl_module.get_submodule(self.module)
            except AttributeError as err:
                raise ValueError(
                    f"DecisionRecorder(module={self.module!r}): the LightningModule has no such submodule ({err})."
                ) from err
        self._hook = target.register_forward_hook(self._forward_hook)

    def _forward_hook(self, module: Any, args: Any, output: Any) -> None:
        # The innermost call completes first; under DDP the outer call wraps validation_step and is ignored.
        if self._capturing:
            self._forward_calls += 1
            self._last_output = output
            if self._captured is None:
                self._captured = output

    def _last_output_is(self, outputs: Any) -> bool:
        """Whether the last hooked call returned the step's own output (DDP routes the step through the
        module's forward: that outer call is not a second forward pass)."""
        return self._forward_calls > 1 and self._last_output is outputs

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Finish queued writes, remove the hook, free buffers and release the store's claim."""
        self._jobs.close()
        if trainer.is_global_zero:
            self._finish_writes(self.pending_timeout)
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._buffers.clear()
        self._sampler_ids.clear()
        if self._lock is not None and trainer.is_global_zero:
            self._lock.release()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """Finish queued writes and release the store's claim (Lightning skips ``teardown`` on exceptions)."""
        self._recording = self._capturing = False
        try:
            self._jobs.flush()
        except Exception as err:  # noqa: BLE001 - the original exception matters more
            warnings.warn(f"DecisionRecorder: a queued write failed too: {err!r}", stacklevel=2)
        if trainer.is_global_zero:
            self._discard_empty_store()
        if self._lock is not None and trainer.is_global_zero:
            self._lock.release()

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        """Apply a checkpoint's state (only ``fit`` resumes a store), resolve the store, and continue the
        trajectory of an earlier ``fit`` by this recorder (a second Trainer or stage) after its last row."""
        if self._checkpoint_state is not None:
            self._apply_checkpoint_state(self._checkpoint_state)
            self._checkpoint_state = None
        self._resolve_store(trainer, pl_module)
        self._continue_after_earlier_rows(trainer)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """Warn when training starts without the before-training row (epoch 0)."""
        if not self._restored and not any(self._rows.values()) and trainer.enable_validation:
            self._pl.utilities.rank_zero_warn(
                "DecisionRecorder: the untrained network (epoch 0) was not recorded. Set "
                "Trainer(num_sanity_val_steps=-1), or call lightning_ddd.validate_before_fit(trainer, model, "
                "datamodule) before fit; both leave training unchanged."
            )

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        """Resolve the store for a ``trainer.validate()`` that records (the untrained network); any other
        ``validate`` leaves every store untouched, whatever checkpoint it loaded."""
        if self._fn(trainer) == "validate":
            self._checkpoint_state = None  # never applied outside fit
            if self._validate_records(trainer) and not any(self._rows.values()):
                self._resolve_store(trainer, pl_module)

    def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Decide whether this validation run is recorded and prepare one buffer per dataloader."""
        self._recording, why = self._decide_recording(trainer)
        if not self._recording:
            if why:
                self._pl.utilities.rank_zero_info(f"DecisionRecorder: not recording this validation run: {why}.")
            return
        loaders = self._val_loaders(trainer)
        device = pl_module.device
        self._with_index.clear()
        for i, loader in enumerate(loaders):
            dataset = getattr(loader, "dataset", None)
            if dataset is None or not hasattr(dataset, "__len__"):
                iterable = isinstance(dataset, torch.utils.data.IterableDataset)
                raise ValueError(
                    f"DecisionRecorder needs to know the number of validation samples, but dataloader {i}'s "
                    f"{type(dataset).__name__} has no length. " + (ITERABLE_IDS_HINT if iterable else
                                                                   "Give the dataset a __len__ (map-style).")
                )
            self._with_index[i] = isinstance(dataset, WithIndex)
            n = len(dataset)
            buf = self._buffers.get(i)
            if buf is None or buf.num_samples != n or buf.device != torch.device(device):
                self._buffers[i] = DeviceBuffer(n, device)
            else:
                buf.reset()
        self._sampler_ids.clear()
        for i, loader in enumerate(loaders):  # at epoch level: building them copies indices to the device
            try:
                self._sampler_ids[i] = SamplerIds(loader, self._buffers[i].device)
            except ValueError as err:  # only an error if the batches carry no ids either
                iterable = isinstance(getattr(loader, "dataset", None), torch.utils.data.IterableDataset)
                hint = f"DecisionRecorder: validation batches carry no sample ids. {ITERABLE_IDS_HINT}"
                self._sampler_ids[i] = ValueError(hint) if iterable else err
        self._num_classes.clear()

    def on_validation_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int,
                                  dataloader_idx: int = 0) -> None:
        """Start capturing forward outputs for this batch."""
        self._captured = self._last_output = None
        self._forward_calls = 0
        self._capturing = self._recording

    def on_validation_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        """Compute this batch's decisions on the device and write them into the buffer by sample id."""
        self._capturing = False
        if not self._recording:
            return
        captured, self._captured = self._captured, None
        record = self.extract_batch(trainer, pl_module, batch, outputs, captured, dataloader_idx)
        self._add(record, batch_idx, dataloader_idx, trainer)

    def _add(self, record: BatchRecord, batch_idx: int, dataloader_idx: int, trainer: Any) -> None:
        classes = num_classes_of(record.logits)
        known = self._num_classes.setdefault(dataloader_idx, classes)
        if classes != known:
            raise ValueError(
                f"Model output changed from {known} to {classes} classes within one validation epoch "
                f"(dataloader {dataloader_idx}, batch {batch_idx}). Override DecisionRecorder.extract_batch."
            )
        ids = record.ids
        if ids is None:
            sids = self._sampler_ids.get(dataloader_idx)
            if isinstance(sids, Exception):
                raise sids
            ids = sids.batch(batch_idx)
        targets = class_targets(record.targets, classes)
        decisions = compute_decisions(record.logits, targets)
        self._buffers[dataloader_idx].add(decisions, targets, ids)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Gather each split (collective), check it, write it on rank 0, and log the live summaries."""
        if not self._recording:
            return
        self._recording = False
        epoch, flags = self._row_position(trainer)
        nums = len(self._buffers)
        for i in sorted(self._buffers):
            split = self.split_name(i, nums)
            buf = self._buffers[i]
            classes = self._num_classes_all_ranks(trainer, self._num_classes.get(i, 0))
            if classes == 0:
                continue  # no rank saw a batch of this dataloader (limit_val_batches=0)
            arrays = gather_epoch(buf, compat.all_gather(trainer))
            row_flags = self._check_epoch(arrays, split, buf.num_samples, classes) | flags
            row_flags |= self._read_outputs(arrays, classes, split)
            row = Row(
                split=split, global_step=int(trainer.global_step) + self._step_offset,
                epoch=epoch + self._epoch_offset, flags=row_flags,
                num_classes=classes, evaluated=arrays.evaluated, correct=arrays.correct,
                pred=arrays.pred, targets=arrays.targets,
                loss=arrays.loss if self.record_loss else None,
                margin=arrays.margin if self.record_margin else None,
            )
            self._write(trainer, row)
            self._epochs.setdefault(split, []).append(row.epoch)
            self._summarise(trainer, pl_module, split, arrays, classes, row_flags)
            self._log_media(trainer, split, arrays, self._val_loaders(trainer)[i])

    def _read_outputs(self, a: EpochArrays, classes: int, split: str) -> RowFlag:
        """Read the epoch's outputs as probabilities when they are (``outputs="probabilities"``, or ``"auto"`` and
        every sample's outputs lie in [0, 1] with softmax rows summing to 1): fix pred (binary), loss and margin
        in place and flag the row; warn once in ``"auto"`` mode."""
        if self.outputs == "logits" or (self.outputs == "auto" and not a.prob_like) or a.out_target is None:
            return RowFlag.NONE
        fixed = decisions_from_probabilities(a.out_target, a.out_other, a.targets, classes)
        ev = a.evaluated
        if fixed["pred"] is not None:
            a.pred = np.where(ev, fixed["pred"], a.pred)
            a.correct = ev & (a.pred == a.targets) & np.isfinite(a.loss)
        a.loss = np.where(ev, fixed["loss"], a.loss).astype(np.float32)
        a.margin = np.where(ev, fixed["margin"], a.margin).astype(np.float32)
        if self.outputs == "auto" and not self._warned_probabilities:
            self._warned_probabilities = True
            self._pl.utilities.rank_zero_warn(
                f"DecisionRecorder: the outputs of split {split!r} look like probabilities (all in [0, 1]"
                + ("" if classes == 2 else ", rows summing to 1") + "), not logits; they are read as "
                "probabilities: decision " + ("p > 0.5" if fixed["pred"] is not None else "argmax")
                + ", loss -log p(target), rows flagged PROBABILITIES. Pass DecisionRecorder(outputs='logits') if "
                "they are logits after all."
            )
        return RowFlag.PROBABILITIES

    def _num_classes_all_ranks(self, trainer: Any, local: int) -> int:
        t = torch.tensor([local], dtype=torch.int64, device=trainer.strategy.root_device)
        return int(trainer.strategy.reduce(t, reduce_op="max").item()) if trainer.world_size > 1 else local

    def _check_epoch(self, a: EpochArrays, split: str, n: int, classes: int, *, repeats_differ: bool = False
                     ) -> RowFlag:
        """Raise on invalid ids, ambiguous ids or targets out of range; warn on non-finite logits.

        ``repeats_differ``: presentations of one id may differ (training split: the model changes between
        them), so an id seen twice with different predictions is not an error there."""
        def some(ids: np.ndarray) -> str:
            return f"{ids[:10].tolist()}{' ...' if ids.size > 10 else ''}"

        if a.bad_ids.size:
            raise ValueError(
                f"Split {split!r}: ids {some(a.bad_ids)} lie outside [0, {n}); nothing was written for this epoch. "
                f"Ids must index the dataset. {MISSING_IDS_HINT}"
            )
        if a.conflict_ids.size and not repeats_differ:
            raise ValueError(
                f"Split {split!r}: ids {some(a.conflict_ids)} were seen more than once in one epoch with different "
                "predictions or targets, so ids do not identify samples; nothing was written for this epoch. "
                f"{MISSING_IDS_HINT}"
            )
        if a.bad_target_ids.size:
            raise ValueError(
                f"Split {split!r}: targets of ids {some(a.bad_target_ids)} lie outside [0, {classes}) for a model "
                f"with {classes} outputs; nothing was written for this epoch. Check the labels or override "
                "DecisionRecorder.extract_batch."
            )
        if a.nonfinite_ids.size:
            self._pl.utilities.rank_zero_warn(
                f"DecisionRecorder: split {split!r} has NaN or infinite logits for {a.nonfinite_ids.size} samples "
                f"(ids {some(a.nonfinite_ids)}); they are recorded as wrong."
            )
            return RowFlag.NONFINITE_LOGITS
        return RowFlag.NONE

    def _write(self, trainer: Any, row: Row) -> None:
        """Queue the row for the background writer on rank 0 (an earlier write's error is raised on every rank)."""
        assert self._writer is not None, "store not resolved"
        writer = self._writer
        self._rank_zero_call(trainer, lambda: self._jobs.submit(lambda: writer.append(row)))
        self._rows[row.split] = self._rows.get(row.split, 0) + 1
        self._last_step[row.split] = row.global_step
