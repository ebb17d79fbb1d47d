"""lightning-ddd: record per-sample decisions during Lightning training and analyse dichotomous data difficulty.

Importing this package imports neither torch nor Lightning: :class:`DecisionRecorder` and
:func:`validate_before_fit` are loaded on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_ddd.store import DecisionStore
from lightning_ddd.with_index import WithIndex

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from lightning_ddd.capture.thumbnails import ThumbnailOptions
    from lightning_ddd.live.summaries import WandbOptions
    from lightning_ddd.recorder.before_fit import validate_before_fit
    from lightning_ddd.recorder.lightning import DecisionRecorder

_LAZY = {
    "DecisionRecorder": "lightning_ddd.recorder.lightning",
    "validate_before_fit": "lightning_ddd.recorder.before_fit",
    "WandbOptions": "lightning_ddd.live.summaries",
    "ThumbnailOptions": "lightning_ddd.capture.thumbnails",
}

__all__ = ["DecisionRecorder", "DecisionStore", "ThumbnailOptions", "WandbOptions", "WithIndex", "__version__",
           "validate_before_fit"]


def _recorder_module(name: str) -> str:
    """Where ``name`` comes from: the ``lightning`` flavour, or the ``pytorch_lightning`` one when only that
    package is installed (the Trainer then needs a ``pytorch_lightning.Callback``).
    """
    import importlib.util

    if name != "DecisionRecorder" or importlib.util.find_spec("lightning") is not None:
        return _LAZY[name]
    if importlib.util.find_spec("pytorch_lightning") is not None:
        return "lightning_ddd.pytorch_lightning"
    raise ImportError("lightning_ddd.DecisionRecorder needs Lightning, and neither `lightning` nor "
                      "`pytorch_lightning` is installed: pip install 'lightning-ddd[lightning]' (or "
                      "'lightning-ddd[pytorch-lightning]' for the pytorch_lightning namespace).")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_recorder_module(name)), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lightning_ddd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
