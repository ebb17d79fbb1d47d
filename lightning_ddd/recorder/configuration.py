"""The recorder's configuration: the option objects (the one way to configure W&B and thumbnails; the old flat
arguments are deprecated with a warning and refused beside their object) and the check of the whole
configuration in one place, before anything runs.
"""

from __future__ import annotations

import warnings
from typing import Any

from lightning_ddd.capture.thumbnails import ThumbnailOptions
from lightning_ddd.live.summaries import WandbOptions
from lightning_ddd.store.validate import check_split_name

_PRECISIONS = ("float32", "float16")
_OUTPUTS = ("auto", "logits", "probabilities")


_WANDB_ALIASES = {"wandb_media": "media", "wandb_table_rows": "table_rows",
                  "wandb_table_every_n_epochs": "table_every_n_epochs", "wandb_artifact_max_mb": "artifact_max_mb"}
_THUMBNAIL_ALIASES = {"thumbnail_size": "size", "thumbnails_max_mb": "max_mb"}


def option_objects(wandb: WandbOptions | None, thumbnails: bool | ThumbnailOptions,
                   flat: dict[str, Any]) -> tuple[WandbOptions, ThumbnailOptions]:
    """The one way to configure W&B media and thumbnails: ``WandbOptions`` and ``ThumbnailOptions``. The flat
    arguments of version 0.1 still work, with one ``FutureWarning`` naming the replacement; given together with
    the option object they belong to, they are refused instead of one silently winning.
    """
    given = {k: v for k, v in flat.items() if v is not None}
    names = sorted(given)
    if not given:
        return wandb or WandbOptions(), (thumbnails if isinstance(thumbnails, ThumbnailOptions)
                                         else ThumbnailOptions(enabled=bool(thumbnails)))
    unnormalize = given.pop("thumbnail_unnormalize", None)
    w_flat = {_WANDB_ALIASES[k]: v for k, v in given.items() if k in _WANDB_ALIASES}
    t_flat = {_THUMBNAIL_ALIASES[k]: v for k, v in given.items() if k in _THUMBNAIL_ALIASES}
    for name, obj, clash in (("wandb=WandbOptions(...)", wandb, w_flat or unnormalize is not None),
                             ("thumbnails=ThumbnailOptions(...)", thumbnails if isinstance(thumbnails, ThumbnailOptions)
                              else None, t_flat or unnormalize is not None)):
        if obj is not None and clash:
            raise ValueError(f"DecisionRecorder: pass either {name} or the deprecated flat arguments {names}, not "
                             "both (nothing decides which one wins).")
    fields = [f"wandb=WandbOptions({v}=...)" for v in w_flat]
    fields += [f"thumbnails=ThumbnailOptions({v}=...)" for v in t_flat]
    if unnormalize is not None:
        fields.append("ThumbnailOptions(unnormalize=...) and WandbOptions(thumbnail_unnormalize=...)")
    warnings.warn(f"DecisionRecorder: the flat arguments {names} are deprecated and will be removed; pass "
                  f"{', '.join(fields)}.", FutureWarning, stacklevel=4)
    w = wandb or WandbOptions(**w_flat, thumbnail_unnormalize=unnormalize)
    t = thumbnails if isinstance(thumbnails, ThumbnailOptions) else ThumbnailOptions(
        enabled=bool(thumbnails), **t_flat, unnormalize=unnormalize)
    return w, t


def check_splits(splits: object, train_split: str) -> None:
    """Refuse split names that are not distinct, valid names."""
    if splits is not None and (not isinstance(splits, (list, tuple)) or not all(isinstance(s, str) for s in splits)
                               or len(set(splits)) != len(splits)):
        raise ValueError(f"DecisionRecorder(splits=...) must be a list of distinct names, got {splits!r}.")
    for name in [*(splits or []), train_split]:
        try:
            check_split_name(name)
        except ValueError as err:
            raise ValueError(f"DecisionRecorder: {err}") from None


def check_configuration(*, precision: str, outputs: str, locking: object, splits: object, train_split: str,
                         burn_in: int | None, flip_threshold: int, wandb: WandbOptions, class_names: object,
                         pending_timeout: float, evaluation: object = None) -> None:
    """Check the whole configuration in one place, before anything runs; one clear line per problem.

    Raises:
        ValueError: naming the argument, what it got and what it takes.
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"DecisionRecorder(precision=...) must be one of {_PRECISIONS}, got {precision!r}. "
                         "Use 'float16' to halve the size of loss and margin.")
    if outputs not in _OUTPUTS:
        raise ValueError(f"DecisionRecorder(outputs=...) must be one of {_OUTPUTS}, got {outputs!r}.")
    if locking not in (True, False, "best-effort"):
        raise ValueError(f"DecisionRecorder(locking=...) must be True, False or 'best-effort', got {locking!r}.")
    check_splits(splits, train_split)
    if (burn_in is not None and burn_in < 0) or flip_threshold < 1:
        raise ValueError(f"DecisionRecorder needs burn_in >= 0 and flip_threshold >= 1, got {burn_in} and "
                         f"{flip_threshold}.")
    if wandb.table_rows < 0:
        raise ValueError(f"DecisionRecorder: W&B table rows must be >= 0, got {wandb.table_rows}.")
    if not pending_timeout >= 0:
        raise ValueError(f"DecisionRecorder(pending_timeout=...) must be >= 0 seconds, got {pending_timeout!r}.")
    if class_names is not None and not (
            (isinstance(class_names, (list, tuple)) and all(isinstance(c, str) for c in class_names))
            or (isinstance(class_names, dict) and all(isinstance(v, (list, tuple)) for v in class_names.values()))):
        raise ValueError("DecisionRecorder(class_names=...) must be a list of strings (index = class) or a dict "
                         f"of such lists by split name, got {type(class_names).__name__}.")
    if evaluation is not None and not (isinstance(evaluation, dict) and isinstance(evaluation.get("model"), str)):
        raise ValueError("DecisionRecorder(evaluation=...) takes a dict with at least 'model' (the model's name) "
                         f"and optionally 'weights' (a weights tag or file hash), got {evaluation!r}.")
