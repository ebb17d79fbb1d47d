"""Input checks shared by the analysis modules (private: one place for the messages)."""

from __future__ import annotations

import numpy as np


def as_bool(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as a boolean array.

    Raises:
        TypeError: ``x`` is not a numpy array.
        ValueError: it holds values other than 0/1 or booleans.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}.")
    if x.dtype != bool:
        if not np.isin(x, (0, 1)).all():
            raise ValueError(f"{name} must hold only 0/1 or booleans.")
        x = x.astype(bool)
    return x

