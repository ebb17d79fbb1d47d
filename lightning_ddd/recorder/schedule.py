"""When a validation run is recorded, and where its row lies on the trajectory, read from the Trainer's state.

The rules: a complete sanity check of a fresh run is the untrained network (epoch 0, ``BEFORE_TRAINING``);
``trainer.validate()`` records only the untrained network (global step 0, no checkpoint) or, with
``evaluation=``, one evaluation of given weights; ``fast_dev_run`` records nothing; every validation inside
``fit`` is recorded at ``current_epoch + 1`` after a full epoch, or at the epoch's fraction when it runs
mid-epoch (``val_check_interval``). Lightning's internals are reached only through
:mod:`lightning_ddd.lightning_compat`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_ddd import lightning_compat as compat
from lightning_ddd.store.format import RowFlag

if TYPE_CHECKING:
    from lightning.pytorch import Trainer


def trainer_fn(trainer: Trainer) -> str:
    """The Trainer's running function: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``."""
    fn = trainer.state.fn
    return str(getattr(fn, "value", fn))


def validation_loaders(trainer: Trainer) -> list[Any]:
    """The validation dataloaders of the running ``fit`` or ``validate``, in order (none before they exist)."""
    loaders = compat.validation_loaders(trainer, trainer_fn(trainer) == "validate")
    if loaders is None:
        return []
    if isinstance(loaders, dict):
        return list(loaders.values())
    return list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]


def sanity_complete(trainer: Trainer) -> bool:
    """Whether the sanity check runs every validation batch (the full run, not the sanity-limited one)."""
    wanted = trainer.num_sanity_val_steps
    return all(wanted >= b for b in list(trainer.num_val_batches))


def validate_records(trainer: Trainer) -> bool:
    """``trainer.validate()`` records only the untrained network (global step 0, no checkpoint)."""
    return trainer.global_step == 0 and getattr(trainer, "ckpt_path", None) is None


def decide_recording(trainer: Trainer, *, has_rows: bool, restored: bool, evaluation: bool) -> tuple[bool, str]:
    """Whether this validation run is recorded, and why not (for an information line).

    Args:
        trainer: the Trainer, at the start of a validation epoch.
        has_rows: the store already holds a row of this run.
        restored: the run resumed from a checkpoint.
        evaluation: the recorder records one evaluation of given weights (``evaluation=``).
    """
    if getattr(trainer, "fast_dev_run", False):
        return False, "fast_dev_run is on"
    if trainer.sanity_checking:
        if trainer.global_step != 0 or restored:
            return False, "sanity check of a resumed run"
        if not sanity_complete(trainer):
            return False, "partial sanity check (set Trainer(num_sanity_val_steps=-1) to record epoch 0)"
        if has_rows:
            return False, "the before-training row is already recorded"
        return True, ""
    if trainer_fn(trainer) != "validate":
        return True, ""
    if evaluation:
        return (False, "this evaluation is already recorded") if has_rows else (True, "")
    if not validate_records(trainer) or has_rows:
        return False, ("trainer.validate() of trained weights is not appended to a training trajectory "
                       "(only the untrained network's, as epoch 0; record a single evaluation of given "
                       "weights with DecisionRecorder(evaluation={'model': ...}) or `lightning-ddd evaluate`)")
    return True, ""


def row_position(trainer: Trainer, *, evaluation: bool) -> tuple[float, RowFlag]:
    """The epoch (fractional mid-epoch) and flags of the row this validation run writes."""
    if trainer.sanity_checking:
        return 0.0, RowFlag.BEFORE_TRAINING
    if trainer_fn(trainer) == "validate":
        if evaluation:
            return 0.0, RowFlag.EVALUATION | RowFlag.VALIDATE_CALL
        return 0.0, RowFlag.BEFORE_TRAINING | RowFlag.VALIDATE_CALL
    last, batch_idx = compat.training_position(trainer)
    if last:
        return float(trainer.current_epoch + 1), RowFlag.NONE
    total = trainer.num_training_batches
    done = batch_idx + 1
    frac = done / total if isinstance(total, (int, float)) and 0 < total < float("inf") else 0.0
    return float(trainer.current_epoch + frac), RowFlag.MID_EPOCH
