"""W&B media for the live dashboard: histograms, a category chart, a bounded table of hard samples with
thumbnails, and the store as an artifact at the end of fit.

Only used with a ``WandbLogger`` and only on global rank 0; everything here runs at epoch end on values
already on the host, and each item is bounded in size (the table by ``table_rows``, never the dataset).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ddd.analysis.dynamics import Category, DynamicsAccumulator
from lightning_ddd.analysis.galleries import hard_samples


def find_wandb_logger(trainer: Any) -> Any | None:
    """The trainer's WandbLogger (of either Lightning flavour), or None."""
    for logger in getattr(trainer, "loggers", None) or []:
        if type(logger).__name__ == "WandbLogger":
            return logger
    return None


def _thumbnail(dataset: Any, sample_id: int, unnormalize: tuple[list[float], list[float]] | None) -> Any | None:
    """An image array (H, W) or (H, W, C) in [0, 1] for a sample of a map-style image dataset, or None."""
    try:
        item = dataset[int(sample_id)]
    except Exception:  # noqa: BLE001 - any dataset failure means "no thumbnail"
        return None
    x = item.get("image", item.get("x")) if isinstance(item, dict) else item[0] if isinstance(item, (tuple, list)) \
        else item
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    x = np.asarray(x, dtype=np.float32) if not isinstance(x, np.ndarray) else x.astype(np.float32)
    if x.ndim == 3 and x.shape[0] in (1, 3):
        if unnormalize is not None:
            mean, std = (np.asarray(v, np.float32)[:, None, None] for v in unnormalize)
            x = x * std + mean
        x = np.transpose(x, (1, 2, 0))
        if x.shape[2] == 1:
            x = x[:, :, 0]
    elif x.ndim != 2:
        return None
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    if unnormalize is None or lo < 0 or hi > 1:
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return x


def _store_thumbnails(store: Path, split: str, ids: list[int]) -> list[Any] | None:
    """The store's thumbnails of ``ids`` as [0, 1] arrays, or None unless the store has all of them."""
    from lightning_ddd.store import DecisionStore
    from lightning_ddd.store.errors import StoreError

    try:
        s = DecisionStore(store)
        mask = s.thumbnail_mask(split) if split in s.splits else None
        wanted = np.asarray(ids, np.int64)
        if mask is None or not ids or wanted.min() < 0 or wanted.max() >= mask.size or not mask[wanted].all():
            return None
        images = s.thumbnails(split, wanted).astype(np.float32) / 255.0
    except (StoreError, OSError, KeyError):
        return None
    return [im[:, :, 0] if im.shape[2] == 1 else im for im in images]


class WandbMedia:
    """Logs the recorder's media to W&B.

    Args:
        table_rows: at most this many rows in the hard-samples table (never the whole dataset).
        unnormalize: optional ``(mean, std)`` per channel to undo before showing thumbnails.
        artifact_max_mb: upload the store as an artifact below this size; above it, log a reference.
    """

    def __init__(self, table_rows: int = 100, unnormalize: tuple[list[float], list[float]] | None = None,
                 artifact_max_mb: float = 200.0) -> None:
        if table_rows < 0:
            raise ValueError(f"table_rows must be >= 0, got {table_rows}.")
        self.table_rows = table_rows
        self.unnormalize = unnormalize
        self.artifact_max_mb = artifact_max_mb

    def hard_samples(self, acc: DynamicsAccumulator) -> np.ndarray:
        """Ids of the most forgettable samples, at most ``table_rows``, chosen by the report's gallery rule
        (:func:`lightning_ddd.analysis.galleries.hard_samples`): never-learned samples first, drawn with the
        galleries' seed, then flip-flopping samples by forgetting events.
        """
        res = acc.result()
        return hard_samples(res.category, res.forgetting_events, self.table_rows)

    def prepare(self, split: str, acc: DynamicsAccumulator, epochs: list[float], pred: np.ndarray,
                targets: np.ndarray, *, table: bool = True, charts: bool = True) -> dict[str, Any]:
        """Snapshot what one row's media need (cheap numpy, on the training thread): histograms' values, the
        category series and the table's rows. The snapshot stays valid while training goes on.
        """
        res = acc.result()
        rows = acc.rows
        burn = [i for i, v in enumerate(rows.always_learned) if np.isfinite(v)]
        out: dict[str, Any] = {"split": split, "table": None, "charts": None}
        if charts:
            first = res.first_learned[res.first_learned >= 0]
            out["charts"] = {
                "rows_correct": res.rows_correct[res.rows_evaluated > 0].copy(),
                "first_learned": np.asarray(epochs)[first] if first.size else None,
                "xs": [epochs[i] for i in burn],
                "ys": [[rows.always_learned[i] for i in burn], [rows.never_learned[i] for i in burn],
                       [rows.flip_flopping[i] for i in burn]],
            }
        if table and self.table_rows:
            ids = self.hard_samples(acc)
            names = Category.keys()
            out["table"] = [(int(i), int(targets[i]), int(pred[i]), int(res.forgetting_events[i]),
                             bool(res.category[i] == Category.NEVER_LEARNED), str(names[res.category[i]]))
                            for i in ids]
        return out

    def build(self, prepared: dict[str, Any], dataset: Any, global_step: int, prefix: str,
              store: Path | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        """Build the W&B objects of a snapshot (thumbnails included: the store's, as the report shows them,
        else read from the dataset), any thread; nothing is logged here.

        Each item is built on its own: one that fails is left out and named, the others still go.

        Returns:
            The payload for ``run.log`` (with ``trainer/global_step``), and ``{key: error}`` for the items that
            could not be built.
        """
        import wandb

        key = f"{prefix}/{prepared['split']}"
        makers: dict[str, Any] = {}
        charts = prepared["charts"]
        if charts is not None:
            makers[f"{key}/rows_correct_hist"] = lambda: wandb.Histogram(charts["rows_correct"])
            if charts["first_learned"] is not None:
                makers[f"{key}/first_learned_hist"] = lambda: wandb.Histogram(charts["first_learned"])
            if charts["xs"]:
                makers[f"{key}/categories"] = lambda: wandb.plot.line_series(
                    xs=charts["xs"], ys=charts["ys"], keys=["always learned", "never learned", "flip-flopping"],
                    title=f"{prepared['split']}: categories so far", xname="epoch")
        if prepared["table"] is not None:
            makers[f"{key}/hard_samples"] = lambda: self._table(prepared["table"], dataset, store, prepared["split"])
        payload: dict[str, Any] = {"trainer/global_step": global_step}
        failed: dict[str, str] = {}
        for name, make in makers.items():
            try:
                payload[name] = make()
            except Exception as err:  # noqa: BLE001 - one item's failure never takes the others with it
                failed[name] = repr(err)
        return payload, failed

    def _table(self, rows: list[tuple], dataset: Any, store: Path | None = None, split: str = "val") -> Any:
        import wandb

        thumbs = _store_thumbnails(store, split, [r[0] for r in rows]) if store is not None else None
        if thumbs is None:
            thumbs = [_thumbnail(dataset, r[0], self.unnormalize) for r in rows] if dataset is not None else []
        with_thumbs = bool(thumbs) and all(t is not None for t in thumbs)
        columns: list[str | int] = ["id", "target", "last_prediction", "forgetting_events", "never_learned",
                                    "category"]
        if with_thumbs:
            columns.append("thumbnail")
        table = wandb.Table(columns=columns)
        for j, row in enumerate(rows):
            table.add_data(*row, *([wandb.Image(thumbs[j])] if with_thumbs else []))
        return table

    def log_store(self, logger: Any, path: Path, run_name: str) -> None:
        """Log the store as an artifact, or a reference with a warning above ``artifact_max_mb``."""
        import wandb

        artifact = wandb.Artifact(name=f"ddd-{run_name}", type="decision-store",
                                  metadata={"path": str(path), "bytes": path.stat().st_size})
        size_mb = path.stat().st_size / 2**20
        if size_mb <= self.artifact_max_mb:
            artifact.add_file(str(path))
        else:
            warnings.warn(
                f"DecisionRecorder: the store {str(path)!r} is {size_mb:.0f} MB, above WandbOptions(artifact_max_mb="
                f"{self.artifact_max_mb:g}); logging a reference to it instead of uploading it.", stacklevel=2)
            artifact.add_reference(f"file://{os.path.abspath(path)}", checksum=False)
        logger.experiment.log_artifact(artifact)
