"""``DecisionRecorder`` for ``pytorch_lightning`` Trainers (the same implementation as ``lightning_ddd``'s).

Example::

    from pytorch_lightning import Trainer
    from lightning_ddd.pytorch_lightning import DecisionRecorder

    trainer = Trainer(callbacks=[DecisionRecorder("ddd/")], num_sanity_val_steps=-1)
"""

from __future__ import annotations

import pytorch_lightning as pl

from lightning_ddd.recorder.before_fit import validate_before_fit
from lightning_ddd.recorder.core import DecisionRecorderCore
from lightning_ddd.with_index import WithIndex


class DecisionRecorder(DecisionRecorderCore, pl.Callback):  # type: ignore[misc]  # hooks typed with lightning's Trainer
    """The recorder for ``pytorch_lightning`` Trainers (see ``DecisionRecorderCore``)."""

    __doc__ = DecisionRecorderCore.__doc__
    _pl = pl


__all__ = ["DecisionRecorder", "WithIndex", "validate_before_fit"]
