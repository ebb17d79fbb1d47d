"""``DecisionRecorder`` for ``lightning.pytorch`` Trainers."""

from __future__ import annotations

import lightning.pytorch as pl

from lightning_ddd.recorder.core import DecisionRecorderCore


class DecisionRecorder(DecisionRecorderCore, pl.Callback):
    """The recorder for ``lightning.pytorch`` Trainers (see ``DecisionRecorderCore``)."""

    __doc__ = DecisionRecorderCore.__doc__
    _pl = pl


__all__ = ["DecisionRecorder"]
