"""Checks of the environment the recorder runs in (no torch import here, so they are testable anywhere)."""

from __future__ import annotations


def check_torch_numpy(torch_version: str, numpy_version: str) -> None:
    """Refuse, in one line, a torch older than 2.3 beside NumPy 2: such torch builds were compiled against
    NumPy 1 and fail later with ``RuntimeError: Numpy is not available``.

    Raises:
        ImportError: the pair cannot work; the message says what to install.
    """
    def major_minor(v: str) -> tuple[int, int]:
        parts = (v.split("+")[0].split(".") + ["0"])[:2]
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)

    if major_minor(torch_version) < (2, 3) and major_minor(numpy_version) >= (2, 0):
        raise ImportError(f"torch {torch_version} was built against NumPy 1 and cannot use NumPy {numpy_version} "
                          "(it fails with 'Numpy is not available'): pip install 'numpy<2' (or torch >= 2.3).")
