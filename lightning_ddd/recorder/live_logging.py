"""Live summaries through ``LightningModule.log`` and W&B media, from the recorder's epoch-end arrays."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from lightning_ddd import lightning_compat as compat
from lightning_ddd.analysis.dynamics import DynamicsAccumulator
from lightning_ddd.analysis.loading import default_burn_in
from lightning_ddd.capture.gather import EpochArrays
from lightning_ddd.live.wandb_media import find_wandb_logger


class LiveLogging:
    """Mixin of ``DecisionRecorderCore``: scalars every row, W&B media on rank 0, the store artifact."""

    def _summarise(self, trainer: Any, pl_module: Any, split: str, a: EpochArrays, classes: int,
                   flags: int = 0) -> None:
        acc = self._live.get(split)
        if acc is None or acc.num_samples != a.evaluated.shape[0]:
            # the split's first row decides the burn-in, by the analysis' own rule (live equals post-hoc)
            burn_in = self.burn_in if self.burn_in is not None else default_burn_in(np.array([int(flags)]))
            acc = self._live[split] = DynamicsAccumulator(a.evaluated.shape[0], burn_in=burn_in,
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
        if compat.is_spawned_ddp_child(trainer):
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


