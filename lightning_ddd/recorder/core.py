"""The recorder's implementation, shared by the ``lightning.pytorch`` and ``pytorch_lightning`` callbacks.

Where a batch goes, in one reading: a forward hook (:class:`~lightning_ddd.capture.forward.ForwardCapture`)
keeps the module's output (the classifier submodule, found by
:class:`~lightning_ddd.capture.forward.HeadFinder` when the LightningModule itself is never called) ->
:meth:`DecisionRecorderCore.extract_batch` finds logits, targets and ids -> the split's
:class:`~lightning_ddd.recorder.split_recorder.SplitRecorder` turns them into decisions in a device buffer ->
at epoch end the split recorder gathers every rank once and builds the row -> the
:class:`~lightning_ddd.recorder.store_session.StoreSession` writes it on rank 0 in the background ->
:class:`~lightning_ddd.live.summaries.LiveSummaries` logs the scalars (and W&B media).

Lightning's internals are reached only through :mod:`lightning_ddd.lightning_compat`.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from typing_extensions import override

from lightning_ddd import lightning_compat as compat
from lightning_ddd.capture.classifier import ClassifierCapture
from lightning_ddd.capture.extract import BatchRecord
from lightning_ddd.capture.sampler_ids import record_sampler_ids
from lightning_ddd.capture.thumbnails import ThumbnailOptions
from lightning_ddd.environment import check_torch_numpy
from lightning_ddd.live.summaries import LiveSummaries, WandbOptions
from lightning_ddd.recorder import schedule
from lightning_ddd.recorder.configuration import check_configuration, option_objects
from lightning_ddd.recorder.epoch_end import EpochEnd
from lightning_ddd.recorder.splits import Splits
from lightning_ddd.recorder.store_session import StoreSession
from lightning_ddd.store.format import RowFlag

if TYPE_CHECKING:
    from lightning.pytorch import Callback as _Callback
    from lightning.pytorch import LightningModule, Trainer
else:
    _Callback = object  # the concrete classes add lightning.pytorch's or pytorch_lightning's Callback


check_torch_numpy(torch.__version__, np.__version__)

class DecisionRecorderCore(_Callback):
    """Record every validation sample's decision at every validation run into an HDF5 store.

    One row per validation run and split, keyed by global step: correctness, predicted class, per-sample
    cross-entropy loss and margin (target logit minus the largest other logit), with an ``evaluated`` mask. The
    untrained network is recorded as the first row ("before training", epoch 0) when the sanity check is
    complete (``Trainer(num_sanity_val_steps=-1)``) or through :func:`lightning_ddd.validate_before_fit`.
    Nothing leaves the device during the epoch; one gather per split runs at epoch end, and only global
    rank 0 writes the file. The state goes into checkpoints, so a resumed run continues its store.

    Args:
        dirpath: folder of the stores; one file ``<run_name>.h5`` per run.
        run_name: file name of the store; default: the first logger's ``<name>_version_<v>``, else a time stamp.
        splits: names of the validation dataloaders' splits; default ``"val"`` or ``"val_<i>"``.
        module: name of the submodule whose output are the logits. Default: the LightningModule itself when the
            steps call it (``self(x)``) or return logits; else the classifier found by itself in the first batch
            (the outermost submodule returning a floating (batch, classes) tensor that no later such call
            consumes), said once; two such heads are refused with both names.
        record_loss: store per-sample cross-entropy (true-class probability is ``exp(-loss)``).
        record_margin: store per-sample margins (for AUM).
        precision: ``"float32"`` or ``"float16"`` for loss and margin (float16 keeps about 3 significant
            digits, relative error at most 2**-11; values beyond 65504 become inf).
        log_summaries: log live scalars through ``LightningModule.log`` at each validation epoch end.
        log_prefix: prefix of the logged keys.
        burn_in: rows ignored by the live categories. Default: the analysis' rule
            (:func:`lightning_ddd.analysis.loading.default_burn_in`): 1 when the split's first row is the untrained
            network (epoch 0), else 0, so the live scalars of a row equal the analysis of the store up to it.
        flip_threshold: forgetting events that make a sample "flip-flopping".
        overwrite: replace an existing store of the same name instead of refusing to start.
        locking: HDF5 file locking of the writer: ``"best-effort"`` (default; works on filesystems without
            locks), ``True`` or ``False``.
        wandb: :class:`~lightning_ddd.WandbOptions`: with a WandbLogger, histograms, a category chart and a
            hard-samples table at each validation epoch end (global rank 0 only), and the store as an artifact at
            the end of fit; ``WandbOptions(media=False)`` switches them off.
        thumbnails: keep one small thumbnail per validation sample in the store (the first time its id is seen),
            for galleries, the sample explorer and W&B tables away from the data. Made when the inputs are images
            ((B, 1 or 3, H, W), float or uint8, ``batch[0]`` or an ``image``/``x``/``pixel_values`` key; or
            ``BatchRecord.images`` from an overridden ``extract_batch``), downsampled on the device and moved
            with the epoch's one transfer. ``False`` switches them off; a :class:`~lightning_ddd.ThumbnailOptions`
            sets everything (size, raw budget ``max_mb``: 50,000 ImageNet images at 64 px take 586 MiB;
            ``unnormalize``; ``train=True`` for the training split, off by default).
        class_names: class names (index = class), or a dict of them by split, kept in the store for the report;
            by default the dataset's ``classes`` (torchvision's convention) when it has them.
        evaluation: record one ``trainer.validate()`` of given weights (a pretrained or saved model, not trained
            by this Trainer) as its own kind of row (flag ``EVALUATION``, never "before training"), with
            ``{"model": name, "weights": tag or file hash}`` in the store's metadata; ``fit`` is refused.
            ``lightning-ddd evaluate`` does this for a list of models.
        record_train: also record each training presentation (in train mode) as one row per epoch of the split
            ``train_split`` (forgetting events, data maps and AUM in Toneva et al.'s and Swayamdipta et al.'s
            sense). Ids come from the batch (``WithIndex``, an ``index`` key) or, exactly, from the loader's sampler
            (sequential, shuffling, or the ``DistributedSampler`` Lightning injects).
        train_split: the split name of the training presentations (default ``"train"``).
        outputs: what the model's outputs are: ``"auto"`` (default) reads an epoch whose outputs all lie in
            [0, 1] (and whose rows sum to 1 for several classes) as probabilities, with one warning; ``"logits"``
            or ``"probabilities"`` say so. Probabilities are recorded as the model's decision (argmax; ``p > 0.5``
            for a single sigmoid output), loss ``-log p(target)`` and margin ``log p(target) - log p(other)``,
            and the row carries the flag ``PROBABILITIES``.
        pending_timeout: seconds the end of a run waits for rows that could not yet be written (a reader held
            the store, the disk was full or read-only) before it warns and leaves them in ``<store>.pending/``
            for ``lightning-ddd repair``.

    Write failures never stop training: a row that cannot go into the store (full disk, read-only
    directory) is parked in a side file ``<store>.h5.pending/`` or, if even that fails, kept in memory and
    retried in order and carried by the checkpoints saved meanwhile; one warning says why and how much space is
    free. Every writer that opens the store appends its side files first; a resume also writes the rows its
    checkpoint carried.

    Deprecated flat arguments (version 0.1; one ``FutureWarning``, refused beside the option object they belong
    to): ``wandb_media``, ``wandb_table_rows``, ``wandb_table_every_n_epochs``, ``wandb_artifact_max_mb`` (use
    ``wandb=WandbOptions(...)``), ``thumbnail_size``, ``thumbnails_max_mb`` (use
    ``thumbnails=ThumbnailOptions(...)``), ``thumbnail_unnormalize`` (both).

    Logged metrics (per split, identical on every rank):
        ``<prefix>/<split>/accuracy``, ``always_learned``, ``never_learned``, ``flip_flopping`` (fractions so
        far), ``learned``, ``forgotten`` (since the previous row), ``kappa_prev`` (error consistency with the
        previous row), ``pred_changes`` (predicted-class changes since the previous row).

    Raises:
        ValueError: bad configuration, batches without targets, logits of an unexpected shape, ids out of
            range or ambiguous, targets out of range.
        FileExistsError: a store of that name exists and the run is not resumed.
        StoreLockedError: another recorder writes the same store.

    Example::

        from lightning.pytorch import Trainer
        from lightning_ddd import DecisionRecorder

        trainer = Trainer(callbacks=[DecisionRecorder("ddd/")], num_sanity_val_steps=-1, max_epochs=90)
        trainer.fit(model, datamodule)   # -> ddd/<run>.h5
    """

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
        precision: Literal["float32", "float16"] = "float32",
        log_summaries: bool = True,
        log_prefix: str = "ddd",
        burn_in: int | None = None,
        flip_threshold: int = 1,
        overwrite: bool = False,
        locking: bool | Literal["best-effort"] = "best-effort",
        wandb: WandbOptions | None = None,
        record_train: bool = False,
        train_split: str = "train",
        pending_timeout: float = 30.0,
        outputs: Literal["auto", "logits", "probabilities"] = "auto",
        thumbnails: bool | ThumbnailOptions = True,
        class_names: list[str] | dict[str, list[str]] | None = None,
        evaluation: dict[str, str] | None = None,
        wandb_media: bool | None = None,
        wandb_table_rows: int | None = None,
        wandb_table_every_n_epochs: int | None = None,
        wandb_artifact_max_mb: float | None = None,
        thumbnail_unnormalize: tuple[list[float], list[float]] | None = None,
        thumbnail_size: int | None = None,
        thumbnails_max_mb: float | None = None,
    ) -> None:
        self.wandb, self.thumbnails = option_objects(wandb, thumbnails, {
            "wandb_media": wandb_media, "wandb_table_rows": wandb_table_rows,
            "wandb_table_every_n_epochs": wandb_table_every_n_epochs, "wandb_artifact_max_mb": wandb_artifact_max_mb,
            "thumbnail_unnormalize": thumbnail_unnormalize, "thumbnail_size": thumbnail_size,
            "thumbnails_max_mb": thumbnails_max_mb})
        check_configuration(precision=precision, outputs=outputs, locking=locking, splits=splits,
                            train_split=train_split, burn_in=burn_in, flip_threshold=flip_threshold,
                            wandb=self.wandb, class_names=class_names, pending_timeout=pending_timeout,
                            evaluation=evaluation)
        self.dirpath = Path(dirpath)
        self.run_name = run_name
        self.splits = list(splits) if splits is not None else None
        self.module = module
        self.record_loss, self.record_margin = record_loss, record_margin
        self.precision = precision
        self.log_summaries = log_summaries
        self.log_prefix = log_prefix
        self.burn_in = burn_in
        self.flip_threshold = flip_threshold
        self.overwrite = overwrite
        self.locking = locking
        self.record_train = record_train
        self.train_split = train_split
        self.pending_timeout = float(pending_timeout)
        self.outputs = outputs
        self.class_names = class_names
        self.evaluation = dict(evaluation) if evaluation is not None else None
        self._compose()

    def _compose(self) -> None:
        """The recorder's parts, from its configuration: the store session, live summaries, the classifier's
        capture, the epoch end, and one split recorder per split.
        """
        self._session = StoreSession(self.dirpath, self.run_name, precision=self.precision, locking=self.locking,
                                     overwrite=self.overwrite, burn_in=self.burn_in,
                                     flip_threshold=self.flip_threshold,
                                     extra_metadata={"evaluation": self.evaluation} if self.evaluation else None)
        self._live = LiveSummaries(prefix=self.log_prefix, log=self.log_summaries, burn_in=self.burn_in,
                                   flip_threshold=self.flip_threshold, wandb=self.wandb)
        self._classifier = ClassifierCapture(self.module, info=self._info, warn=self._warn)
        self._epoch_end = EpochEnd(self._session, self._live, outputs=self.outputs, record_loss=self.record_loss,
                                   record_margin=self.record_margin, warn=self._warn)
        self._splits = Splits(self.splits, self.train_split, self.class_names, self.thumbnails)
        self._recording = False
        self._train_active = False

    def _warn(self, message: str) -> None:
        """A warning on global rank 0 (looked up at each call: Lightning's function, whatever wraps it then)."""
        self._pl.utilities.rank_zero_warn(message)

    def _info(self, message: str) -> None:
        """An information line on global rank 0."""
        self._pl.utilities.rank_zero_info(message)

    # ------------------------------------------------------------------ public properties
    @property
    @override
    def state_key(self) -> str:
        """Key of the recorder's state in checkpoints: class name, run name, splits and the name of the store
        folder (its last component only, never the whole path, so a run whose folder moved still resumes).
        Two recorders in one Trainer differ in at least one of these.
        """
        return (f"DecisionRecorder{{'run_name': {self.run_name!r}, 'splits': {self.splits!r}, "
                f"'folder': {self.dirpath.name!r}, 'train': {self.record_train!r}}}")

    @property
    def store_path(self) -> Path | None:
        """The store being written, once resolved (at fit or validate start)."""
        return self._session.path

    def split_name(self, dataloader_idx: int, num_dataloaders: int) -> str:
        """Name of the split of a validation dataloader: ``splits[i]``, ``"val"`` or ``"val_<i>"``."""
        return self._splits.name(dataloader_idx, num_dataloaders)

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
        return self._classifier.default_record(batch, outputs, captured,
                                               with_index=self._splits.with_index(dataloader_idx))

    # ------------------------------------------------------------------ hooks (called by the subclasses)
    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Check the Lightning internals the recorder needs; register the forward hook on the LightningModule
        or the named submodule.
        """
        compat.check_trainer(trainer)
        compat.on_loaders_ready(trainer, self._watch_sampler)  # shuffled loaders: ids without changing the batch
        self._classifier.attach(pl_module)

    def _watch_sampler(self, loader: Any, training: bool) -> None:
        """Record a shuffling loader's indices as its sampler draws them (training loaders only when recorded)."""
        if not training or self.record_train:
            record_sampler_ids(loader)

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Finish queued writes, remove the hook, free buffers and release the store's claim."""
        self._classifier.detach()
        compat.remove_loader_hooks(trainer)
        self._splits.release()
        self._session.close(trainer.is_global_zero, self.pending_timeout)

    @override
    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """Finish queued writes, remove a store that holds nothing trained, release the store's claim
        (Lightning skips ``teardown`` on exceptions).
        """
        self._recording = self._train_active = False
        self._classifier.stop()
        compat.remove_loader_hooks(trainer)
        if self._session.abandon(trainer.is_global_zero):
            self._live.reset()

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Apply a checkpoint's state (only ``fit`` resumes a store), resolve the store, and continue the
        trajectory of an earlier ``fit`` by this recorder (a second Trainer or stage) after its last row.
        """
        if self.evaluation is not None:
            raise ValueError("DecisionRecorder(evaluation=...) records one trainer.validate() of given weights, "
                             "not a training run; use a recorder without evaluation= for fit.")
        resumed = self._session.apply_checkpoint()
        self._session.resolve(trainer, pl_module, id(self), warn=self._warn)
        if resumed:
            self._live.restore(*self._session.rebuild_live(trainer))
        message = self._session.continue_after_earlier_rows(trainer, self._live.last_epoch())
        if message:
            self._info(message)

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Warn when training starts without the before-training row (epoch 0)."""
        if not self._session.restored and not self._session.has_rows() and trainer.enable_validation:
            self._warn(
                "DecisionRecorder: the untrained network (epoch 0) was not recorded. Set "
                "Trainer(num_sanity_val_steps=-1), or call lightning_ddd.validate_before_fit(trainer, model, "
                "datamodule) before fit; both leave training unchanged."
            )

    @override
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Finish queued writes; W&B's last tables and the store artifact (rank 0)."""
        self._session.flush()
        self._live.finish_fit(trainer, self._session.path, self._session.resolved_name or "run", self._warn)

    @override
    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Resolve the store for a ``trainer.validate()`` that records (the untrained network); any other
        ``validate`` leaves every store untouched, whatever checkpoint it loaded.
        """
        if schedule.trainer_fn(trainer) == "validate":
            self._session.checkpoint_state = None  # never applied outside fit
            records = self.evaluation is not None or schedule.validate_records(trainer)
            if records and not self._session.has_rows():
                self._session.resolve(trainer, pl_module, id(self), warn=self._warn)

    @override
    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Decide whether this validation run is recorded and prepare one split recorder per dataloader."""
        self._recording, why = schedule.decide_recording(
            trainer, has_rows=self._session.has_rows(), restored=bool(self._session.restored),
            evaluation=self.evaluation is not None)
        if not self._recording:
            if why:
                self._info(f"DecisionRecorder: not recording this validation run: {why}.")
            return
        self._splits.start_validation(schedule.validation_loaders(trainer), pl_module.device)

    @override
    def on_validation_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int,
                                  dataloader_idx: int = 0) -> None:
        """Start capturing forward outputs for this batch."""
        self._classifier.begin(pl_module, self._recording)

    @override
    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        """Compute this batch's decisions on the device and write them into the split's buffer by sample id."""
        captured = self._classifier.end(pl_module, batch, outputs)
        if not self._recording:
            return
        record = self.extract_batch(trainer, pl_module, batch, outputs, captured, dataloader_idx)
        self._splits.of(dataloader_idx).add(record, batch_idx)

    @override
    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Gather each split (collective), check it, write it on rank 0, and log the live summaries."""
        if not self._recording:
            return
        self._recording = False
        epoch, flags = schedule.row_position(trainer, evaluation=self.evaluation is not None)
        for split, loader in self._splits.validation_epochs(schedule.validation_loaders(trainer)):
            self._epoch_end.finish(trainer, pl_module, split, epoch, flags, loader)

    # ------------------------------------------------------------------ the training split (record_train=True)
    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Prepare the training-split recorder (``record_train=True``)."""
        self._train_active = bool(self.record_train) and not getattr(trainer, "fast_dev_run", False)
        if self._train_active:
            self._splits.start_training(trainer.train_dataloader, pl_module.device)

    @override
    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """Start capturing forward outputs of this training batch; log W&B media built since the last batch."""
        self._classifier.begin(pl_module, self._train_active)
        self._live.drain()

    @override
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Record this presentation's decisions (train mode) on the device, by sample id."""
        captured = self._classifier.end(pl_module, batch, outputs)
        if not self._train_active:
            return
        record = self.extract_batch(trainer, pl_module, batch, outputs, captured, -1)
        self._splits.of(-1).add(record, batch_idx)

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Gather the epoch's presentations and write one training-split row (a collective)."""
        if not self._train_active:
            return
        self._train_active = False
        self._epoch_end.finish(trainer, pl_module, self._splits.train, float(trainer.current_epoch + 1),
                               RowFlag.NONE, None)

    # ------------------------------------------------------------------ checkpoints
    @override
    def state_dict(self) -> dict[str, object]:
        """Small, flat resume state (see :meth:`StoreSession.state_dict`)."""
        return self._session.state_dict()

    @override
    def load_state_dict(self, state_dict: dict[str, object]) -> None:
        """Remember a checkpoint's state; only a ``fit`` resuming from it continues the store."""
        self._session.load_state_dict(state_dict)

    def flush(self) -> None:
        """Wait until queued rows are written (and raise a write error)."""
        self._session.flush()
