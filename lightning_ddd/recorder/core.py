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
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from lightning_ddd import lightning_compat as compat
from lightning_ddd.capture.extract import (
    BatchRecord,
    batch_size_of,
    find_ids,
    find_targets,
    logits_from_forward,
    logits_from_output,
)
from lightning_ddd.capture.forward import ForwardCapture, HeadFinder
from lightning_ddd.capture.gather import EpochArrays
from lightning_ddd.capture.sampler_ids import record_sampler_ids
from lightning_ddd.capture.thumbnails import ThumbnailOptions, find_images
from lightning_ddd.environment import check_torch_numpy
from lightning_ddd.live.summaries import LiveSummaries, WandbOptions
from lightning_ddd.recorder.configuration import check_configuration, option_objects
from lightning_ddd.recorder.split_recorder import SplitRecorder
from lightning_ddd.recorder.store_session import StoreSession
from lightning_ddd.store.format import RowFlag

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule, Trainer


check_torch_numpy(torch.__version__, np.__version__)

class DecisionRecorderCore:
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
        """The recorder's parts, from its configuration: the store session, live summaries, forward capture,
        split recorders, and the one-time warnings' state.
        """
        self._warned_thumbnails: set[str] = set()
        self._warned_repeats: set[str] = set()
        self._session = StoreSession(self.dirpath, self.run_name, precision=self.precision, locking=self.locking,
                                     overwrite=self.overwrite, burn_in=self.burn_in,
                                     flip_threshold=self.flip_threshold,
                                     extra_metadata={"evaluation": self.evaluation} if self.evaluation else None)
        self._live = LiveSummaries(prefix=self.log_prefix, log=self.log_summaries, burn_in=self.burn_in,
                                   flip_threshold=self.flip_threshold, wandb=self.wandb)
        self._capture = ForwardCapture()
        self._finder: HeadFinder | None = None
        self._head: str | None = None  # the submodule found by itself when the LightningModule is never called
        self._head_settled = False
        self._val: dict[int, SplitRecorder] = {}
        self._train = SplitRecorder(self.train_split, train=True)
        self._recording = False
        self._train_active = False
        self._warned_calls = False
        self._warned_probabilities = False

    # ------------------------------------------------------------------ public properties
    @property
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
            self._warn_calls(captured, outputs)
        if logits is None:
            where = self._watched() if self.module or self._head else "the LightningModule or any submodule"
            raise ValueError(
                f"DecisionRecorder found no logits for a validation batch: validation_step returned "
                f"{type(outputs).__name__} and no call of {where} returned a floating (batch, classes) tensor. "
                "Call the classifier in validation_step, name it with DecisionRecorder(module='...'), return the "
                "logits (or a dict with 'logits'), or override DecisionRecorder.extract_batch."
            )
        targets = find_targets(batch)
        if targets is None:
            raise ValueError(
                f"DecisionRecorder found no targets in a batch of type {type(batch).__name__}: expected (x, y, ...) "
                "or a dict with one of 'label', 'labels', 'target', 'targets', 'y'. Override "
                "DecisionRecorder.extract_batch for other layouts."
            )
        return BatchRecord(logits=logits, targets=targets,
                           ids=find_ids(batch, with_index=self._with_index(dataloader_idx)), images=find_images(batch))

    def _warn_calls(self, captured: Any, outputs: Any) -> None:
        """Warn once when the watched module ran several times in one step (only the first call is recorded)."""
        calls = self._capture.calls - (1 if captured is not None and self._capture.last_was(outputs) else 0)
        if calls > 1 and not self._warned_calls:
            self._warned_calls = True
            self._pl.utilities.rank_zero_warn(
                f"DecisionRecorder: {self._watched()} was called {calls} times in one validation step (test-time "
                "augmentation, an ensemble, a model calling itself?); the first call's output is recorded. To "
                "record the step's own decision, return its logits from validation_step (a (B, C) tensor or "
                "{'logits': ...})."
            )

    def _watched(self) -> str:
        name = self.module or self._head
        return f"submodule {name!r}" if name else "the LightningModule"

    # ------------------------------------------------------------------ finding the classifier by itself
    def _begin_capture(self, pl_module: LightningModule, active: bool) -> None:
        """Start a batch's capture; while the classifier is not known yet, watch every submodule too."""
        self._capture.begin(active)
        if active and self.module is None and not self._head_settled and self._finder is None:
            self._finder = HeadFinder(pl_module)

    def _end_capture(self, pl_module: LightningModule, batch: Any, outputs: Any) -> Any:
        """End a batch's capture; the first time the LightningModule itself is not called and the step returns
        no logits, choose the classifier among the submodules (said once) and watch it from now on.
        """
        captured = self._capture.end()
        finder, self._finder = self._finder, None
        if finder is None:
            return captured
        finder.close()
        size = batch_size_of(batch)
        if captured is not None or logits_from_output(outputs, size) is not None:
            self._head_settled = True  # the README's default: self(x) is called, or the step returns logits
            return captured
        choice = finder.choose(size)  # two heads: refused with both names
        if choice is None:
            return None
        self._head, output = choice
        self._head_settled = True
        self._capture.attach(pl_module.get_submodule(self._head))
        self._capture.calls = finder.count(self._head)
        self._pl.utilities.rank_zero_info(
            f"DecisionRecorder: the LightningModule itself is not called in its steps; recording the outputs of "
            f"submodule {self._head!r} (the outermost call returning (batch, classes)). Pass "
            "DecisionRecorder(module='...') to record another submodule."
        )
        return output

    def _class_names(self, split: str) -> list[str] | None:
        if isinstance(self.class_names, dict):
            names = self.class_names.get(split)
            return list(names) if names is not None else None
        return list(self.class_names) if self.class_names is not None else None

    def _with_index(self, dataloader_idx: int) -> bool:
        split = self._train if dataloader_idx < 0 else self._val.get(dataloader_idx)
        return bool(split is not None and split.with_index)

    # ------------------------------------------------------------------ helpers: trainer state
    def _fn(self, trainer: Trainer) -> str:
        fn = trainer.state.fn
        return str(getattr(fn, "value", fn))

    def _val_loaders(self, trainer: Trainer) -> list[Any]:
        loaders = compat.validation_loaders(trainer, self._fn(trainer) == "validate")
        if loaders is None:
            return []
        if isinstance(loaders, dict):
            return list(loaders.values())
        return list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]

    def _sanity_complete(self, trainer: Trainer) -> bool:
        wanted = trainer.num_sanity_val_steps
        return all(wanted >= b for b in list(trainer.num_val_batches))  # the full run, not the sanity-limited one

    @staticmethod
    def _validate_records(trainer: Trainer) -> bool:
        """``trainer.validate()`` records only the untrained network (global step 0, no checkpoint)."""
        return trainer.global_step == 0 and getattr(trainer, "ckpt_path", None) is None

    def _decide_recording(self, trainer: Trainer) -> tuple[bool, str]:
        """Whether this validation run is recorded, and why not (for an info message)."""
        if getattr(trainer, "fast_dev_run", False):
            return False, "fast_dev_run is on"
        before = self._session.has_rows()
        if trainer.sanity_checking:
            if trainer.global_step != 0 or self._session.restored:
                return False, "sanity check of a resumed run"
            if not self._sanity_complete(trainer):
                return False, "partial sanity check (set Trainer(num_sanity_val_steps=-1) to record epoch 0)"
            if before:
                return False, "the before-training row is already recorded"
            return True, ""
        if self._fn(trainer) == "validate":
            if self.evaluation is not None:
                return (False, "this evaluation is already recorded") if before else (True, "")
            if not self._validate_records(trainer) or before:
                return False, ("trainer.validate() of trained weights is not appended to a training trajectory "
                               "(only the untrained network's, as epoch 0; record a single evaluation of given "
                               "weights with DecisionRecorder(evaluation={'model': ...}) or `lightning-ddd evaluate`)")
            return True, ""
        return True, ""

    def _row_position(self, trainer: Trainer) -> tuple[float, RowFlag]:
        if trainer.sanity_checking:
            return 0.0, RowFlag.BEFORE_TRAINING
        if self._fn(trainer) == "validate":
            if self.evaluation is not None:
                return 0.0, RowFlag.EVALUATION | RowFlag.VALIDATE_CALL
            return 0.0, RowFlag.BEFORE_TRAINING | RowFlag.VALIDATE_CALL
        last, batch_idx = compat.training_position(trainer)
        if last:
            return float(trainer.current_epoch + 1), RowFlag.NONE
        total = trainer.num_training_batches
        done = batch_idx + 1
        frac = done / total if isinstance(total, (int, float)) and 0 < total < float("inf") else 0.0
        return float(trainer.current_epoch + frac), RowFlag.MID_EPOCH

    def _classes_all_ranks(self, trainer: Trainer, local: int) -> int:
        if trainer.world_size <= 1:
            return local
        t = torch.tensor([local], dtype=torch.int64, device=trainer.strategy.root_device)
        return int(trainer.strategy.reduce(t, reduce_op="max").item())

    def _read_outputs(self, split: SplitRecorder, a: EpochArrays, classes: int) -> RowFlag:
        """Read the epoch's outputs as probabilities when they are (``outputs="probabilities"``, or ``"auto"``
        and every sample's outputs lie in [0, 1] with softmax rows summing to 1); warn once in ``"auto"``.
        """
        if self.outputs == "logits" or (self.outputs == "auto" and not a.prob_like):
            return RowFlag.NONE
        if not split.read_probabilities(a, classes):
            return RowFlag.NONE
        if self.outputs == "auto" and not self._warned_probabilities:
            self._warned_probabilities = True
            self._pl.utilities.rank_zero_warn(
                f"DecisionRecorder: the outputs of split {split.name!r} look like probabilities (all in [0, 1]"
                + ("" if classes == 2 else ", rows summing to 1") + "), not logits; they are read as "
                "probabilities: decision argmax (p > 0.5 for one sigmoid output), loss -log p(target), rows flagged "
                "PROBABILITIES. Pass DecisionRecorder(outputs='logits') if they are logits after all."
            )
        return RowFlag.PROBABILITIES

    def _warn_repeats(self, trainer: Trainer, split: SplitRecorder, a: Any, epoch: float) -> None:
        """Warn once per split when an epoch presented samples more than once (a sampler with replacement), beyond
        the few duplicates a DistributedSampler pads with: the row keeps each id's last presentation.
        """
        repeats = int(a.presentations.sum() - (a.presentations > 0).sum())
        if not split.train or split.name in self._warned_repeats or repeats <= max(0, trainer.world_size - 1):
            return
        self._warned_repeats.add(split.name)
        self._pl.utilities.rank_zero_warn(
            f"DecisionRecorder: split {split.name!r} presented {int((a.presentations > 1).sum())} samples more than "
            f"once in epoch {epoch:g} (up to {int(a.presentations.max())} times: a sampler with replacement, such as "
            "WeightedRandomSampler or RandomSampler(replacement=True)). Each row keeps the last presentation of "
            "each id (the store's 'presentations' field counts them all), so forgetting events, data maps and AUM "
            "see one presentation per sample and epoch."
        )

    def _finish_epoch(self, trainer: Trainer, pl_module: LightningModule, split: SplitRecorder, epoch: float,
                      flags: RowFlag, loader: Any) -> None:
        """Gather, check, read, write and summarise one split's epoch (a collective)."""
        classes = self._classes_all_ranks(trainer, split.num_classes)
        if classes == 0:
            return  # no rank saw a batch of this split (limit_val_batches=0)
        arrays = split.gather(compat.all_gather(trainer))
        flags = split.check(arrays, classes) | flags
        if flags & RowFlag.NONFINITE_LOGITS:
            self._pl.utilities.rank_zero_warn(
                f"DecisionRecorder: split {split.name!r} has NaN or infinite logits for {arrays.nonfinite_ids.size} "
                f"samples (ids {arrays.nonfinite_ids[:10].tolist()}); they are recorded as wrong."
            )
        self._warn_repeats(trainer, split, arrays, epoch)
        flags |= self._read_outputs(split, arrays, classes)
        step, epoch = self._session.row_key(int(trainer.global_step), epoch)
        row = split.row(arrays, classes=classes, global_step=step, epoch=epoch, flags=flags,
                        record_loss=self.record_loss, record_margin=self.record_margin)
        if split.thumb_note and split.name not in self._warned_thumbnails:
            self._warned_thumbnails.add(split.name)
            self._pl.utilities.rank_zero_warn(split.thumb_note)
        self._session.write(trainer, row)
        self._live.update(pl_module, split.name, arrays, row.epoch, int(row.flags), train=split.train)
        if not split.train:
            self._live.log_media(trainer, split.name, arrays, loader, self._session.jobs.submit, self._session.path)

    # ------------------------------------------------------------------ hooks (called by the subclasses)
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Check the Lightning internals the recorder needs; register the forward hook on the LightningModule
        or the named submodule.
        """
        compat.check_trainer(trainer)
        compat.on_loaders_ready(trainer, self._watch_sampler)  # shuffled loaders: ids without changing the batch
        target: torch.nn.Module = pl_module
        if self.module or self._head:
            try:
                target = pl_module.get_submodule(self.module or self._head or "")
            except AttributeError as err:
                raise ValueError(
                    f"DecisionRecorder(module={self.module!r}): the LightningModule has no such submodule ({err})."
                ) from err
        self._capture.attach(target)

    def _watch_sampler(self, loader: Any, training: bool) -> None:
        """Record a shuffling loader's indices as its sampler draws them (training loaders only when recorded)."""
        if not training or self.record_train:
            record_sampler_ids(loader)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Finish queued writes, remove the hook, free buffers and release the store's claim."""
        self._session.close_jobs()
        if trainer.is_global_zero:
            self._session.finish(self.pending_timeout)
        self._capture.detach()
        compat.remove_loader_hooks(trainer)
        for split in (*self._val.values(), self._train):
            split.release()
        if trainer.is_global_zero:
            self._session.release()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """Finish queued writes, remove a store that holds nothing trained, release the store's claim
        (Lightning skips ``teardown`` on exceptions).
        """
        self._recording = self._train_active = False
        self._capture.active = False
        compat.remove_loader_hooks(trainer)
        try:
            self._session.flush()
        except Exception as err:  # noqa: BLE001 - the original exception matters more
            warnings.warn(f"DecisionRecorder: a queued write failed too: {err!r}", stacklevel=2)
        if trainer.is_global_zero:
            discarded = self._session.discard_if_untrained()
            if discarded:
                self._live.reset()
            self._session.release()
            if discarded:
                self._session.remove_created_folders()

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Apply a checkpoint's state (only ``fit`` resumes a store), resolve the store, and continue the
        trajectory of an earlier ``fit`` by this recorder (a second Trainer or stage) after its last row.
        """
        if self.evaluation is not None:
            raise ValueError("DecisionRecorder(evaluation=...) records one trainer.validate() of given weights, "
                             "not a training run; use a recorder without evaluation= for fit.")
        resumed = self._session.apply_checkpoint()
        self._session.resolve(trainer, pl_module, id(self), warn=self._pl.utilities.rank_zero_warn)
        if resumed:
            self._live.restore(*self._session.rebuild_live(trainer))
        message = self._session.continue_after_earlier_rows(trainer, self._live.last_epoch())
        if message:
            self._pl.utilities.rank_zero_info(message)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Warn when training starts without the before-training row (epoch 0)."""
        if not self._session.restored and not self._session.has_rows() and trainer.enable_validation:
            self._pl.utilities.rank_zero_warn(
                "DecisionRecorder: the untrained network (epoch 0) was not recorded. Set "
                "Trainer(num_sanity_val_steps=-1), or call lightning_ddd.validate_before_fit(trainer, model, "
                "datamodule) before fit; both leave training unchanged."
            )

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Finish queued writes; W&B's last tables and the store artifact (rank 0)."""
        self._session.flush()
        self._live.finish_fit(trainer, self._session.path, self._session.resolved_name or "run",
                              self._pl.utilities.rank_zero_warn)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Resolve the store for a ``trainer.validate()`` that records (the untrained network); any other
        ``validate`` leaves every store untouched, whatever checkpoint it loaded.
        """
        if self._fn(trainer) == "validate":
            self._session.checkpoint_state = None  # never applied outside fit
            records = self.evaluation is not None or self._validate_records(trainer)
            if records and not self._session.has_rows():
                self._session.resolve(trainer, pl_module, id(self), warn=self._pl.utilities.rank_zero_warn)

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Decide whether this validation run is recorded and prepare one split recorder per dataloader."""
        self._recording, why = self._decide_recording(trainer)
        if not self._recording:
            if why:
                self._pl.utilities.rank_zero_info(f"DecisionRecorder: not recording this validation run: {why}.")
            return
        loaders = self._val_loaders(trainer)
        for i, loader in enumerate(loaders):
            name = self.split_name(i, len(loaders))
            split = self._val.get(i)
            if split is None or split.name != name:
                split = self._val[i] = SplitRecorder(name)
            split.start(loader, pl_module.device, self.thumbnails, self._class_names(name))

    def on_validation_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int,
                                  dataloader_idx: int = 0) -> None:
        """Start capturing forward outputs for this batch."""
        self._begin_capture(pl_module, self._recording)

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        """Compute this batch's decisions on the device and write them into the split's buffer by sample id."""
        captured = self._end_capture(pl_module, batch, outputs)
        if not self._recording:
            return
        record = self.extract_batch(trainer, pl_module, batch, outputs, captured, dataloader_idx)
        self._val[dataloader_idx].add(record, batch_idx)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Gather each split (collective), check it, write it on rank 0, and log the live summaries."""
        if not self._recording:
            return
        self._recording = False
        epoch, flags = self._row_position(trainer)
        loaders = self._val_loaders(trainer)
        for i in sorted(self._val):
            if i < len(loaders):
                self._finish_epoch(trainer, pl_module, self._val[i], epoch, flags, loaders[i])

    # ------------------------------------------------------------------ the training split (record_train=True)
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Prepare the training-split recorder (``record_train=True``)."""
        self._train_active = bool(self.record_train) and not getattr(trainer, "fast_dev_run", False)
        if self._train_active:
            self._train.start(trainer.train_dataloader, pl_module.device,
                              self.thumbnails if self.thumbnails.train else None, self._class_names(self.train_split))

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """Start capturing forward outputs of this training batch; log W&B media built since the last batch."""
        self._begin_capture(pl_module, self._train_active)
        self._live.drain()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Record this presentation's decisions (train mode) on the device, by sample id."""
        captured = self._end_capture(pl_module, batch, outputs)
        if not self._train_active:
            return
        record = self.extract_batch(trainer, pl_module, batch, outputs, captured, -1)
        self._train.add(record, batch_idx)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Gather the epoch's presentations and write one training-split row (a collective)."""
        if not self._train_active:
            return
        self._train_active = False
        self._finish_epoch(trainer, pl_module, self._train, float(trainer.current_epoch + 1), RowFlag.NONE, None)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Small, flat resume state (see :meth:`StoreSession.state_dict`)."""
        return self._session.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Remember a checkpoint's state; only a ``fit`` resuming from it continues the store."""
        self._session.load_state_dict(state_dict)

    def _resolve_store(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Resolve the store now (as at the start of ``fit``)."""
        self._session.apply_checkpoint()
        self._session.resolve(trainer, pl_module, id(self), warn=self._pl.utilities.rank_zero_warn)

    def flush(self) -> None:
        """Wait until queued rows are written (and raise a write error)."""
        self._session.flush()
