"""Constants and small helpers that define the on-disk layout of a decision store.

The layout is documented for users in ``docs/store-format.md``; this module is its single source in code.
Nothing here imports torch or Lightning.
"""

from __future__ import annotations

import enum

FORMAT_NAME = "lightning-ddd-store"
"""Value of the root attribute ``format``."""

FORMAT_VERSION = 1
"""Value of the root attribute ``format_version``. Readers refuse newer versions."""

SPLITS_GROUP = "splits"
"""Group that holds one sub-group per recorded split."""

ROW_FIELDS = ("global_step", "epoch", "flags", "wall_time", "committed")
"""One value per row. ``committed`` is written last; rows without it do not exist for readers."""

CHUNK_SAMPLES = 1 << 20
"""At most this many samples per HDF5 chunk (chunks are one row high)."""

COMPRESSION = "gzip"
COMPRESSION_LEVEL = 4


class RowFlag(enum.IntFlag):
    """Bit flags stored per row in ``flags``.

    Attributes:
        BEFORE_TRAINING: the untrained network's evaluation (epoch 0).
        MID_EPOCH: a validation run in the middle of a training epoch (``val_check_interval < 1``);
            its ``epoch`` is fractional.
        TRAIN_PRESENTATIONS: a training-split row built from the presentations of one training epoch.
        NONFINITE_LOGITS: at least one sample had NaN or infinite logits (recorded as wrong).
        PROBABILITIES: the model's outputs were probabilities (softmax rows, or a sigmoid for a binary output),
            read as such: decision argmax (binary: p > 0.5), loss -log p(target), margin
            log p(target) - log p(largest other).
        VALIDATE_CALL: recorded by ``trainer.validate()`` (outside ``fit``).
    """

    NONE = 0
    BEFORE_TRAINING = 1
    MID_EPOCH = 2
    TRAIN_PRESENTATIONS = 4
    NONFINITE_LOGITS = 8
    PROBABILITIES = 16
    VALIDATE_CALL = 32


def pred_dtype(num_classes: int) -> str:
    """Return the smallest signed integer dtype able to hold class indices.

    Args:
        num_classes: number of classes (2 for binary outputs).

    Returns:
        ``"int16"`` for at most 32,767 classes, else ``"int32"``.
    """
    return "int16" if num_classes <= 32767 else "int32"
