"""Live summaries while training: scalars through ``LightningModule.log`` for every logger, W&B media on rank 0.

:class:`LiveSummaries` keeps one :class:`~lightning_ddd.analysis.dynamics.DynamicsAccumulator` per split (the
analysis' own maths, with the analysis' burn-in rule, so the last row's scalars equal the analysis of the
store), logs the scalars, and hands W&B media (:class:`~lightning_ddd.live.wandb_media.WandbMedia`) to the
recorder's background thread.
"""

from __future__ import annotations

import collections
import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lightning_ddd import lightning_compat as compat
from lightning_ddd.analysis.dynamics import DynamicsAccumulator
from lightning_ddd.analysis.loading import default_burn_in
from lightning_ddd.capture.gather import EpochArrays
from lightning_ddd.live.wandb_media import WandbMedia, find_wandb_logger

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule, Trainer


@dataclasses.dataclass
class WandbOptions:
    """What the recorder logs to W&B besides the scalars (only with a ``WandbLogger``, on global rank 0).

    Attributes:
        media: log histograms, a category chart and a hard-samples table at each validation epoch end, and
            the store as an artifact at the end of fit.
        table_rows: rows of the hard-samples table (never-learned first, then most flip-flopping), at most.
        table_every_n_epochs: log the table (with thumbnails, the costliest item) at every n-th row and for the
            last row at the end of fit.
        artifact_max_mb: upload the store as an artifact below this size; above it, log a reference.
        thumbnail_unnormalize: ``(mean, std)`` per channel to undo before showing thumbnails.
    """

    media: bool = True
    table_rows: int = 100
    table_every_n_epochs: int = 10
    artifact_max_mb: float = 200.0
    thumbnail_unnormalize: tuple[list[float], list[float]] | None = None


class LiveSummaries:
    """Per-split live accumulators, the logged scalars, and W&B media.

    Args:
        prefix: prefix of the logged keys (``<prefix>/<split>/<name>``).
        log: log the scalars at all.
        burn_in: rows ignored by the live categories; None: the analysis' rule (1 when a split's first row is
            the untrained network, else 0).
        flip_threshold: forgetting events that make a sample flip-flopping.
        wandb: the W&B options.
    """

    def __init__(self, *, prefix: str, log: bool, burn_in: int | None, flip_threshold: int,
                 wandb: WandbOptions) -> None:
        self.prefix = prefix
        self.log = log
        self.burn_in = burn_in
        self.flip_threshold = flip_threshold
        self.wandb = wandb
        self.media = WandbMedia(wandb.table_rows, wandb.thumbnail_unnormalize, wandb.artifact_max_mb)
        self.live: dict[str, DynamicsAccumulator] = {}
        self.epochs: dict[str, list[float]] = {}
        self.failed_items: set[str] = set()
        self.outbox: collections.deque[tuple[Any, dict[str, object]]] = collections.deque()  # thread-safe, picklable
        self.table_pending: dict[str, tuple[Any, EpochArrays]] = {}
        self.media_calls: dict[str, int] = {}
        self.store: Path | None = None

    def restore(self, live: dict[str, DynamicsAccumulator], epochs: dict[str, list[float]]) -> None:
        """Continue from a resumed store's rows."""
        self.live, self.epochs = live, epochs

    def last_epoch(self) -> float:
        """The latest epoch of any split so far (0 when none)."""
        return max((e[-1] for e in self.epochs.values() if e), default=0.0)

    def reset(self) -> None:
        """Forget everything (the store was discarded)."""
        self.live, self.epochs, self.table_pending, self.media_calls = {}, {}, {}, {}

    # ------------------------------------------------------------------ scalars
    def update(self, pl_module: LightningModule, split: str, a: EpochArrays, epoch: float, flags: int,
               *, train: bool = False) -> None:
        """Add the row to the split's accumulator and log the scalars (every rank, identically)."""
        self.epochs.setdefault(split, []).append(epoch)
        acc = self.live.get(split)
        if acc is None or acc.num_samples != a.evaluated.shape[0]:
            burn_in = default_burn_in(np.array([int(flags)]))
            if self.burn_in is not None and not train:
                burn_in = self.burn_in
            acc = self.live[split] = DynamicsAccumulator(a.evaluated.shape[0], burn_in=burn_in,
                                                         flip_threshold=self.flip_threshold)
        acc.update(a.correct, a.evaluated, pred=a.pred)
        if not self.log or train:
            return
        for key, value in self.values(split).items():
            if np.isfinite(value):
                pl_module.log(key, float(value), on_step=False, on_epoch=True, sync_dist=False)

    def values(self, split: str) -> dict[str, float]:
        """The live scalars of a split's latest row, keyed as logged (``<prefix>/<split>/<name>``).

        Names: ``accuracy``, ``always_learned``, ``never_learned``, ``flip_flopping`` (fractions of observed
        samples so far), ``learned`` and ``forgotten`` (samples since the previous row), ``kappa_prev``
        (error consistency with the previous row), ``pred_changes`` (samples whose predicted class changed).
        """
        acc = self.live.get(split)
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
        return {f"{self.prefix}/{split}/{k}": v for k, v in values.items()}

    # ------------------------------------------------------------------ W&B media
    def log_media(self, trainer: Trainer, split: str, a: EpochArrays, loader: Any,
                  submit: Callable[[Callable[[], None]], None], store: Path | None = None) -> None:
        """W&B media on global rank 0 only, never during the sanity check; built by ``submit`` (the background
        thread) and logged by the training thread (:meth:`drain`); a failure only warns, naming the item.
        """
        if not self.wandb.media or trainer.sanity_checking or not trainer.is_global_zero:
            return
        logger = find_wandb_logger(trainer)
        if logger is None:
            return
        self.drain()
        calls = self.media_calls.get(split, 0)
        self.media_calls[split] = calls + 1
        # the table (thumbnails) costs most: every n-th row, and the last one at the end of fit
        table = (calls + 1) % max(1, self.wandb.table_every_n_epochs) == 0
        dataset = getattr(loader, "dataset", None)
        if table:
            self.table_pending.pop(split, None)
        else:
            self.table_pending[split] = (dataset, a)
        self.store = store
        prepared = self.media.prepare(split, self.live[split], self.epochs[split], a.pred, a.targets, table=table)
        step = int(trainer.global_step)
        submit(lambda: self._emit(logger, prepared, dataset, step))

    def _emit(self, logger: Any, prepared: dict[str, object], dataset: Any, step: int) -> None:
        """Build a snapshot's media (any thread) and queue them for the training thread."""
        payload, failed = self.media.build(prepared, dataset, step, self.prefix, self.store)
        for key, err in failed.items():
            self._warn_failure(key, err)
        if len(payload) > 1:
            self.outbox.append((logger, payload))

    def drain(self) -> None:
        """Log the media built so far, on the calling (training) thread: W&B's ``run.log`` is only ever called
        from the thread that also logs Lightning's metrics, never concurrently with it.
        """
        while self.outbox:
            try:
                logger, payload = self.outbox.popleft()
            except IndexError:
                return
            try:
                logger.experiment.log(payload)
            except Exception as err:  # noqa: BLE001 - media must never stop training
                self._warn_failure(", ".join(k for k in payload if k != "trainer/global_step"), repr(err))

    def _warn_failure(self, what: str, err: str) -> None:
        """One warning per failing item; later items and the store artifact are still logged."""
        if what not in self.failed_items:
            self.failed_items.add(what)
            warnings.warn(f"DecisionRecorder: W&B media {what!r} could not be logged ({err}); the other media and "
                          "the store artifact are still logged.", stacklevel=3)

    def finish_fit(self, trainer: Trainer, store: Path | None, run_name: str,
                   warn: Callable[[str], None]) -> None:
        """At the end of fit on rank 0: the last rows' tables, the store as an artifact; finish the W&B run only
        in a spawned or forked DDP child, which exits without W&B's exit hooks.
        """
        if not trainer.is_global_zero or store is None:
            return
        logger = find_wandb_logger(trainer)
        if logger is None:
            return
        self.drain()  # every row's media, built in the background, before the end-of-fit items
        if self.wandb.media and self.table_pending:
            for split, (dataset, a) in self.table_pending.items():  # the last rows' table, if skipped
                try:
                    prepared = self.media.prepare(split, self.live[split], self.epochs[split], a.pred, a.targets,
                                                  table=True, charts=False)
                    self._emit(logger, prepared, dataset, int(trainer.global_step))
                except Exception as err:  # noqa: BLE001 - never takes the artifact with it
                    self._warn_failure(f"{self.prefix}/{split}/hard_samples", repr(err))
            self.table_pending.clear()
            self.drain()
        if self.wandb.media and store.exists():
            try:
                self.media.log_store(logger, store, run_name)
            except Exception as err:  # noqa: BLE001
                warn(f"DecisionRecorder: could not log the store to W&B: {err!r}")
        if compat.is_spawned_ddp_child(trainer):
            logger.experiment.finish()
