"""The recorder's implementation, shared by the ``lightning.pytorch`` and ``pytorch_lightning`` callbacks.

Data flows one way: a forward hook and the batch-end hook capture logits, targets and ids (on the
device) -> :class:`~lightning_ddd.capture.buffer.DeviceBuffer` -> one gather per split at epoch end ->
:class:`~lightning_ddd.store.StoreWriter` on global rank 0 -> live summaries through ``self.log``.
"""

from __future__ import annotations

import types
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_ddd.analysis.dynamics import DynamicsAccumulator
from lightning_ddd.capture.buffer import DeviceBuffer
from lightning_ddd.capture.decisions import compute_decisions, num_classes_of
from lightning_ddd.capture.extract import (
    MISSING_IDS_HINT,
    BatchRecord,
    batch_size_of,
    find_ids,
    find_targets,
    logits_from_output,
)
from lightning_ddd.capture.gather import EpochArrays, gather_epoch
from lightning_ddd.capture.sampler_ids import SamplerIds
from lightning_ddd.live.wandb_media import WandbMedia, find_wandb_logger
from lightning_ddd.recorder.background import BackgroundJobs
from lightning_ddd.recorder.naming import default_run_name, run_metadata, safe_name
from lightning_ddd.store.format import RowFlag
from lightning_ddd.store.lock import StoreLock
from lightning_ddd.store.row import Row
from lightning_ddd.store.writer import StoreWriter, pending_dir

_PRECISIONS = ("float32", "float16")


class DecisionRecorderCore:
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
        burn_in: int = 1,
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
    ) -> None:
        if precision not in _PRECISIONS:
            raise ValueError(
                f"DecisionRecorder(precision=...) must be one of {_PRECISIONS}, got {precision!r}. "
                "Use 'float16' to halve the size of loss and margin."
            )
        if locking not in (True, False, "best-effort"):
            raise ValueError(f"DecisionRecorder(locking=...) must be True, False or 'best-effort', got {locking!r}.")
        if splits is not None and (not isinstance(splits, (list, tuple)) or not all(isinstance(s, str) for s in splits)
                                   or len(set(splits)) != len(splits)):
            raise ValueError(f"DecisionRecorder(splits=...) must be a list of distinct names, got {splits!r}.")
        if burn_in < 0 or flip_threshold < 1:
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
        self._media = WandbMedia(wandb_table_rows, thumbnail_unnormalize, wandb_artifact_max_mb)
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        self._writer: StoreWriter | None = None
        self._lock: StoreLock | None = None
        self._store_path: Path | None = None
        self._resolved_run_name: str | None = None
        self._run_id: str | None = None
        self._restored: dict[str, Any] = {}
        self._rows: dict[str, int] = {}
        self._last_step: dict[str, int] = {}
        self._hook: Any = None
        self._captured: Any = None
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
        self._last_arrays: dict[str, EpochArrays] = {}
        self._media_failed = False
        self._table_pending: dict[str, tuple[Any, EpochArrays]] = {}
        self._media_calls: dict[str, int] = {}
        self._jobs = BackgroundJobs()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_hook", "_captured", "_buffers", "_sampler_ids", "_train_buffer", "_train_ids"):
            state[key] = {} if key in ("_buffers", "_sampler_ids") else None
        return state

    # ------------------------------------------------------------------ public properties
    @property
    def state_key(self) -> str:
        """Key of the recorder's state in checkpoints: class name, run name and splits, never the path."""
        return f"DecisionRecorder{{'run_name': {self.run_name!r}, 'splits': {self.splits!r}}}"

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
            logits = logits_from_output(captured, size) if not isinstance(captured, torch.Tensor) else captured
            if logits is None and captured is not None and hasattr(captured, "logits"):
                logits = captured.logits
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
        return BatchRecord(logits=logits, targets=targets, ids=find_ids(batch))

    # ------------------------------------------------------------------ helpers: trainer state
    def _fn(self, trainer: Any) -> str:
        fn = trainer.state.fn
        return str(getattr(fn, "value", fn))

    def _val_loaders(self, trainer: Any) -> list[Any]:
        loop = trainer.validate_loop if self._fn(trainer) == "validate" else trainer.fit_loop.epoch_loop.val_loop
        combined = loop._combined_loader
        loaders = combined.iterables if combined is not None else trainer.val_dataloaders
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
            if trainer.global_step != 0 or before:
                return False, ("trainer.validate() after training started is not appended to the training "
                               "trajectory")
            return True, ""
        return True, ""

    def _row_position(self, trainer: Any) -> tuple[float, RowFlag]:
        if trainer.sanity_checking or self._fn(trainer) == "validate":
            return 0.0, RowFlag.BEFORE_TRAINING
        epoch_loop = trainer.fit_loop.epoch_loop
        if epoch_loop.batch_progress.is_last_batch:
            return float(trainer.current_epoch + 1), RowFlag.NONE
        total = trainer.num_training_batches
        done = epoch_loop.batch_idx + 1
        frac = done / total if isinstance(total, (int, float)) and 0 < total < float("inf") else 0.0
        return float(trainer.current_epoch + frac), RowFlag.MID_EPOCH

    # ------------------------------------------------------------------ store resolution (collective)
    def _rank_zero_call(self, trainer: Any, fn: Any) -> Any:
        """Run ``fn`` on global rank 0, broadcast its result or exception, raise it on every rank."""
        result: Any = None
        error: BaseException | None = None
        if trainer.is_global_zero:
            try:
                result = fn()
            except BaseException as err:  # noqa: BLE001 - re-raised on every rank below
                error = err
        result, error = trainer.strategy.broadcast((result, error), src=0)
        if error is not None:
            raise error
        return result

    def _resolve_store(self, trainer: Any, pl_module: Any) -> None:
        if self._writer is not None:
            if self._lock is not None:
                self._rank_zero_call(trainer, lambda: self._lock.acquire(resuming=True))
            return
        name = self._restored.get("run_name") or (safe_name(self.run_name) if self.run_name else None)
        name = name or default_run_name(trainer)
        run_id = self._restored.get("run_id") or uuid.uuid4().hex
        name, run_id = trainer.strategy.broadcast((name, run_id), src=0)
        path = self.dirpath / f"{name}.h5"
        old = self._restored.get("store_path")
        if old and Path(old).resolve() != path.resolve():
            self._pl.utilities.rank_zero_warn(
                f"DecisionRecorder: the checkpoint recorded into {old!r}; continuing in {str(path)!r} (dirpath moved)."
            )
        writer = StoreWriter(path, run_name=name, run_id=run_id, metadata=run_metadata(trainer, pl_module),
                             float_dtype=self.precision, locking=self.locking)
        lock = StoreLock(path, run_id, id(self))

        def open_on_rank_zero() -> dict[str, int]:
            lock.acquire(resuming=bool(self._restored))
            try:
                if path.exists() and not self._restored:
                    if not self.overwrite:
                        raise FileExistsError(
                            f"A decision store already exists at {str(path)!r}. Resume with "
                            "trainer.fit(..., ckpt_path=...), choose another DecisionRecorder(run_name=...) or "
                            "dirpath, or pass overwrite=True to replace it."
                        )
                    path.unlink()
                    for stale in writer.pending_files():
                        stale.unlink()
                counts = writer.open()
                return self._drop_stale_rows(writer, counts)
            except BaseException:
                lock.release()
                raise

        counts = self._rank_zero_call(trainer, open_on_rank_zero)
        self._writer, self._lock, self._store_path = writer, lock, path
        self._resolved_run_name, self._run_id = name, run_id
        self._rows = dict(counts)
        if self._restored:
            self._rebuild_live(trainer)

    def _drop_stale_rows(self, writer: StoreWriter, counts: dict[str, int]) -> dict[str, int]:
        if not self._restored:
            return counts
        kept = dict(self._restored.get("rows", {}))
        for split, n in counts.items():
            keep = kept.get(split, 0)
            if n > keep:
                dropped = writer.truncate(split, keep)
                warnings.warn(
                    f"DecisionRecorder: dropped {dropped} row(s) of split {split!r} written after the checkpoint "
                    f"that is being resumed ({str(writer.path)!r} now holds {keep} rows).", stacklevel=2,
                )
                counts[split] = keep
        return counts

    def _rebuild_live(self, trainer: Any) -> None:
        from lightning_ddd.store.reader import DecisionStore

        def read() -> tuple[dict[str, DynamicsAccumulator], dict[str, list[float]]]:
            store = DecisionStore(self._store_path)
            live, epochs = {}, {}
            for split in store.splits:
                epochs[split] = store.rows(split)["epoch"].tolist()
                fields = ("evaluated", "correct", "pred")
                info = store.info(split)
                acc = DynamicsAccumulator(info.num_samples, burn_in=0 if info.kind == "train" else self.burn_in,
                                          flip_threshold=self.flip_threshold)
                for row in store.iter_rows(split, fields):
                    acc.update(row["correct"], row["evaluated"], pred=row["pred"])
                live[split] = acc
            return live, epochs

        self._live, self._epochs = self._rank_zero_call(trainer, read)
        self._last_step = {s: int(v) for s, v in self._restored.get("last_step", {}).items()}

    # ------------------------------------------------------------------ hooks (called by the subclasses)
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Register the forward hook on the LightningModule or the named submodule."""
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
        if self._capturing and self._captured is None:
            self._captured = output

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Finish queued writes, remove the hook, free buffers and release the store's claim."""
        self._jobs.close()
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
        if self._lock is not None and trainer.is_global_zero:
            self._lock.release()

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        """Resolve the store (after any checkpoint state was loaded)."""
        self._resolve_store(trainer, pl_module)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """Warn when training starts without the before-training row (epoch 0)."""
        if not self._restored and not any(self._rows.values()) and trainer.enable_validation:
            self._pl.utilities.rank_zero_warn(
                "DecisionRecorder: the untrained network (epoch 0) was not recorded. Set "
                "Trainer(num_sanity_val_steps=-1), or call lightning_ddd.validate_before_fit(trainer, model, "
                "datamodule) before fit; both leave training unchanged."
            )

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        """Resolve the store for ``trainer.validate()`` runs."""
        if self._fn(trainer) == "validate":
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
        for i, loader in enumerate(loaders):
            dataset = getattr(loader, "dataset", None)
            if dataset is None or not hasattr(dataset, "__len__"):
                raise ValueError(
                    "DecisionRecorder needs a validation dataloader over a dataset with a length (map-style); "
                    f"dataloader {i} has {type(dataset).__name__}."
                )
            n = len(dataset)
            buf = self._buffers.get(i)
            if buf is None or buf.num_samples != n or buf.device != torch.device(device):
                self._buffers[i] = DeviceBuffer(n, 0, device)
            else:
                buf.reset()
        self._sampler_ids.clear()
        for i, loader in enumerate(loaders):  # at epoch level: building them copies indices to the device
            try:
                self._sampler_ids[i] = SamplerIds(loader, self._buffers[i].device)
            except ValueError as err:  # only an error if the batches carry no ids either
                self._sampler_ids[i] = err
        self._num_classes.clear()

    def on_validation_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int,
                                  dataloader_idx: int = 0) -> None:
        """Start capturing forward outputs for this batch."""
        self._captured = None
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
        decisions = compute_decisions(record.logits, record.targets)
        self._buffers[dataloader_idx].add(decisions, record.targets, ids)

    # ------------------------------------------------------------------ training split
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
        buf = self._train_buffer
        if buf is None or buf.num_samples != n or buf.device != torch.device(pl_module.device):
            self._train_buffer = DeviceBuffer(n, 0, pl_module.device)
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
        self._train_buffer.add(compute_decisions(record.logits, record.targets), record.targets, ids)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Gather the epoch's presentations and write one training-split row (a collective)."""
        if not self._train_active or self._train_buffer is None:
            return
        self._train_active = False
        buf = self._train_buffer
        classes = self._num_classes_all_ranks(trainer, self._train_classes)
        if classes == 0:
            return
        arrays = gather_epoch(buf)
        arrays.conflict_ids = arrays.conflict_ids[:0]  # repeated presentations may differ: keep the last
        flags = self._check_epoch(arrays, self.train_split, buf.num_samples, classes) | RowFlag.TRAIN_PRESENTATIONS
        row = Row(
            split=self.train_split, global_step=int(trainer.global_step), epoch=float(trainer.current_epoch + 1),
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
            arrays = gather_epoch(buf)
            row_flags = self._check_epoch(arrays, split, buf.num_samples, classes) | flags
            row = Row(
                split=split, global_step=int(trainer.global_step), epoch=epoch, flags=row_flags,
                num_classes=classes, evaluated=arrays.evaluated, correct=arrays.correct,
                pred=arrays.pred, targets=arrays.targets,
                loss=arrays.loss if self.record_loss else None,
                margin=arrays.margin if self.record_margin else None,
            )
            self._write(trainer, row)
            self._last_arrays[split] = arrays
            self._epochs.setdefault(split, []).append(epoch)
            self._summarise(trainer, pl_module, split, arrays, classes)
            self._log_media(trainer, split, arrays, self._val_loaders(trainer)[i])

    def _num_classes_all_ranks(self, trainer: Any, local: int) -> int:
        t = torch.tensor([local], dtype=torch.int64, device=trainer.strategy.root_device)
        return int(trainer.strategy.reduce(t, reduce_op="max").item()) if trainer.world_size > 1 else local

    def _check_epoch(self, a: EpochArrays, split: str, n: int, classes: int) -> RowFlag:
        def some(ids: np.ndarray) -> str:
            return f"{ids[:10].tolist()}{' ...' if ids.size > 10 else ''}"

        if a.bad_ids.size:
            raise ValueError(
                f"Split {split!r}: ids {some(a.bad_ids)} lie outside [0, {n}); nothing was written for this epoch. "
                f"Ids must index the dataset. {MISSING_IDS_HINT}"
            )
        if a.conflict_ids.size:
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

    def _summarise(self, trainer: Any, pl_module: Any, split: str, a: EpochArrays, classes: int) -> None:
        acc = self._live.get(split)
        if acc is None or acc.num_samples != a.evaluated.shape[0]:
            acc = self._live[split] = DynamicsAccumulator(a.evaluated.shape[0], burn_in=self.burn_in,
                                                          flip_threshold=self.flip_threshold)
        acc.update(a.correct, a.evaluated, pred=a.pred)
        if not self.log_summaries:
            return
        for key, value in self.summary_values(split).items():
            if np.isfinite(value):
                pl_module.log(key, float(value), on_step=False, on_epoch=True, sync_dist=False)

    def _log_media(self, trainer: Any, split: str, a: EpochArrays, loader: Any) -> None:
        """W&B media on global rank 0 only, never during the sanity check; a failure only warns."""
        if not self.wandb_media or self._media_failed or trainer.sanity_checking or not trainer.is_global_zero:
            return
        logger = find_wandb_logger(trainer)
        if logger is None:
            return
        calls = self._media_calls.get(split, 0)
        self._media_calls[split] = calls + 1
        # the table (thumbnails) costs most: every n-th row, and the last one at the end of fit
        table = (calls + 1) % max(1, self.wandb_table_every_n_epochs) == 0
        dataset = getattr(loader, "dataset", None)
        if table:
            self._table_pending.pop(split, None)
        else:
            self._table_pending[split] = (dataset, a)
        prepared = self._media.prepare(split, self._live[split], self._epochs[split], a.pred, a.targets, table=table)
        self._jobs.submit(lambda: self._emit_media(logger, prepared, dataset, int(trainer.global_step)))

    def _emit_media(self, logger: Any, prepared: dict[str, Any], dataset: Any, step: int) -> None:
        if self._media_failed:
            return
        try:
            self._media.emit(logger, prepared, dataset, step, self.log_prefix)
        except Exception as err:  # noqa: BLE001 - media must never stop training
            self._media_failed = True
            warnings.warn(f"DecisionRecorder: W&B media disabled after an error: {err!r}", stacklevel=2)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        """Finish queued writes; log the store as a W&B artifact; finish the W&B run only in a DDP child
        process that would otherwise lose it."""
        self._jobs.flush()
        if not trainer.is_global_zero or self._store_path is None:
            return
        logger = find_wandb_logger(trainer)
        if logger is None:
            return
        if self.wandb_media and self._table_pending and not self._media_failed:
            for split, (dataset, a) in self._table_pending.items():  # the last rows' table, if skipped
                prepared = self._media.prepare(split, self._live[split], self._epochs[split], a.pred, a.targets,
                                               table=True, charts=False)
                self._emit_media(logger, prepared, dataset, int(trainer.global_step))
            self._table_pending.clear()
        if self.wandb_media and self._store_path.exists():
            try:
                self._media.log_store(logger, self._store_path, self._resolved_run_name or "run")
            except Exception as err:  # noqa: BLE001
                self._pl.utilities.rank_zero_warn(f"DecisionRecorder: could not log the store to W&B: {err!r}")
        if _in_multiprocessing_child(trainer):
            # a spawned or forked DDP child exits with os._exit: an unfinished offline run would stay empty
            logger.experiment.finish()

    def summary_values(self, split: str) -> dict[str, float]:
        """The live scalars of a split's latest row, keyed as logged (``<prefix>/<split>/<name>``).

        Names: ``accuracy``, ``always_learned``, ``never_learned``, ``flip_flopping`` (fractions of observed
        samples so far), ``learned`` and ``forgotten`` (samples since the previous row), ``kappa_prev``
        (error consistency with the previous row), ``pred_changes`` (samples whose predicted class changed).
        """
        acc = self._live.get(split)
        if acc is None or not acc.rows.accuracy:
            return {}
        rows = acc.rows
        values = {
            "accuracy": rows.accuracy[-1], "always_learned": rows.always_learned[-1],
            "never_learned": rows.never_learned[-1], "flip_flopping": rows.flip_flopping[-1],
            "learned": float(rows.learned[-1]) if len(rows.learned) > 1 else float("nan"),
            "forgotten": float(rows.forgotten[-1]) if len(rows.forgotten) > 1 else float("nan"),
            "kappa_prev": rows.kappa_prev[-1], "pred_changes": rows.pred_changes[-1],
        }
        return {f"{self.log_prefix}/{split}/{k}": v for k, v in values.items()}

    # ------------------------------------------------------------------ checkpoint state
    def state_dict(self) -> dict[str, Any]:
        """Small, flat resume state: run name and id, store path, committed rows per split.

        Queued writes are finished first, so the checkpoint never counts a row that is not in the store.
        """
        try:
            self._jobs.flush()
        except Exception as err:  # noqa: BLE001 - raised again (on every rank) at the next row
            self._jobs._error = err
        return {
            "run_name": self._resolved_run_name, "run_id": self._run_id,
            "store_path": str(self._store_path) if self._store_path else None,
            "rows": dict(self._rows), "last_step": dict(self._last_step), "version": 1,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Remember the checkpoint's run so that the store is continued, not restarted."""
        if not state_dict.get("run_id"):
            return
        self._restored = {
            "run_name": state_dict.get("run_name"), "run_id": state_dict.get("run_id"),
            "store_path": state_dict.get("store_path"), "rows": dict(state_dict.get("rows", {})),
            "last_step": dict(state_dict.get("last_step", {})),
        }
        self._writer = None


def _in_multiprocessing_child(trainer: Any) -> bool:
    import multiprocessing

    launcher = getattr(trainer.strategy, "launcher", None)
    return type(launcher).__name__ == "_MultiProcessingLauncher" and multiprocessing.parent_process() is not None


def pending_rows(path: str | Path) -> int:
    """Number of rows of a store still waiting in side files."""
    folder = pending_dir(path)
    return len(list(folder.glob("*.npz"))) if folder.is_dir() else 0
