"""Recording the untrained network (epoch 0) without changing the run."""

from __future__ import annotations

import importlib
from typing import Any


def _framework(trainer: Any) -> str:
    return "pytorch_lightning" if type(trainer).__module__.startswith("pytorch_lightning") else "lightning.pytorch"


def validate_before_fit(trainer: Any, model: Any, datamodule: Any = None, dataloaders: Any = None) -> Any:
    """Evaluate the untrained model once with ``trainer.validate`` under Lightning's ``isolate_rng``.

    A plain ``trainer.validate()`` before ``fit`` draws from the global random generators (iterating a
    DataLoader does) and so changes the training run; under ``isolate_rng`` every generator is restored
    afterwards and the following ``fit`` is bit-identical to one without it. A ``DecisionRecorder`` among
    the trainer's callbacks stores this evaluation as the "before training" row (epoch 0). The alternative
    is ``Trainer(num_sanity_val_steps=-1)``, whose complete sanity check Lightning already runs under
    ``isolate_rng``.

    Args:
        trainer: the Trainer that will then run ``fit``.
        model: the LightningModule.
        datamodule: optional LightningDataModule.
        dataloaders: optional validation dataloaders (instead of a datamodule).

    Returns:
        What ``trainer.validate`` returns.
    """
    seed = importlib.import_module(f"{_framework(trainer)}.utilities.seed")
    with seed.isolate_rng():
        return trainer.validate(model, dataloaders=dataloaders, datamodule=datamodule, verbose=False)
