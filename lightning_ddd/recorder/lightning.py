"""``DecisionRecorder`` for ``lightning.pytorch`` Trainers."""

from __future__ import annotations

import lightning.pytorch as pl

from lightning_ddd.recorder.core import DecisionRecorderCore
from lightning_ddd.recorder.docs import RECORDER_DOC


class DecisionRecorder(DecisionRecorderCore, pl.Callback):
    __doc__ = RECORDER_DOC
    _pl = pl


__all__ = ["DecisionRecorder"]
