"""Run names, store paths and run metadata (no Lightning imports at module level)."""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from importlib import metadata as importlib_metadata
from typing import Any

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """Turn a run name into a file name: only letters, digits, '.', '_' and '-'."""
    cleaned = _SAFE.sub("-", str(name)).strip("-.")
    return cleaned or "run"


def default_run_name(trainer: Any) -> str:
    """Name a run after the trainer's first logger (``<name>_version_<v>``), else a time stamp and a nonce."""
    loggers = getattr(trainer, "loggers", None) or []
    if loggers:
        logger = loggers[0]
        name = logger.name or "run"
        version = logger.version
        version = version if isinstance(version, str) else f"version_{version}"
        return safe_name(f"{name}_{version}")
    return f"run_{time.strftime('%Y%m%d-%H%M%S')}_{uuid.uuid4().hex[:6]}"


def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def run_metadata(trainer: Any, pl_module: Any) -> dict[str, object]:
    """Collect run metadata: hyperparameters, model class, seed, versions, world size, start time."""
    try:  # LightningCLI adds its internal "_instantiator": not a hyperparameter of the user's
        hparams = {k: v for k, v in dict(pl_module.hparams).items() if not str(k).startswith("_")}
    except Exception:  # noqa: BLE001 - hparams may be anything
        hparams = {}
    return {
        "hparams": hparams,
        "model_class": f"{type(pl_module).__module__}.{type(pl_module).__qualname__}",
        "seed": os.environ.get("PL_GLOBAL_SEED"),
        "world_size": getattr(trainer, "world_size", 1),
        "precision": str(getattr(trainer, "precision", "")),
        "max_epochs": getattr(trainer, "max_epochs", None),
        "start_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {d: _version(d) for d in ("lightning-ddd", "torch", "lightning", "pytorch-lightning",
                                                 "numpy", "h5py")} | {"python": sys.version.split()[0]},
    }
