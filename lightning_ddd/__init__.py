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
    from lightning_ddd.recorder.before_fit import validate_before_fit
    from lightning_ddd.recorder.lightning import DecisionRecorder

_LAZY = {
    "DecisionRecorder": "lightning_ddd.recorder.lightning",
    "validate_before_fit": "lightning_ddd.recorder.before_fit",
}

__all__ = ["DecisionRecorder", "DecisionStore", "WithIndex", "__version__", "validate_before_fit"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lightning_ddd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
