"""Constants and small helpers that define the on-disk layout of a decision store.

The layout is documented for users in ``docs/store-format.md``; this module is its single source in code.
Nothing here imports torch or Lightning.
"""

from __future__ import annotations

import dataclasses
import enum
import math

FORMAT_NAME = "lightning-ddd-store"
"""Value of the root attribute ``format``."""

FORMAT_VERSION = 1
"""Value of the root attribute ``format_version``. Readers refuse newer versions."""

SPLITS_GROUP = "splits"
"""Group that holds one sub-group per recorded split."""



@dataclasses.dataclass(frozen=True)
class Field:
    """One dataset of a split group: the single description that the writer, the validator and the reader use.

    Attributes:
        name: the dataset's name.
        dtype: the dtype the writer creates (``"pred"``: by the number of classes, :func:`pred_dtype`;
            ``"float"``: the recorder's precision, float32 or float16).
        kinds: numpy dtype kinds a reader accepts (``"b"`` bool, ``"i"``/``"u"`` integers, ``"f"`` floats).
        fill: the value of a cell whose sample a row did not evaluate (per-sample fields only).
        required: every split records it.
    """

    name: str
    dtype: str
    kinds: str
    fill: object = None
    required: bool = False


SAMPLE_FIELDS: tuple[Field, ...] = (
    Field("evaluated", "bool", "b", False, required=True),
    Field("correct", "bool", "b", False, required=True),
    Field("pred", "pred", "i", -1, required=True),
    Field("loss", "float", "f", math.nan),
    Field("margin", "float", "f", math.nan),
    Field("presentations", "uint8", "iu", 0),
)
"""Per-sample datasets of shape (rows, N), one row per recorded evaluation."""

ROW_VALUES: tuple[Field, ...] = (
    Field("global_step", "int64", "iu"),
    Field("epoch", "float64", "fiu"),
    Field("flags", "uint8", "iu"),
    Field("wall_time", "float64", "f"),
    Field("committed", "uint8", "iu"),
)
"""One value per row. ``committed`` is written last; rows without it do not exist for readers."""

SAMPLE = {f.name: f for f in SAMPLE_FIELDS}
"""The per-sample fields by name."""

ROW = {f.name: f for f in ROW_VALUES}
"""The per-row values by name."""

OPTIONAL_SAMPLE_FIELDS = tuple(f.name for f in SAMPLE_FIELDS if not f.required)
"""The per-sample fields a row may leave out (the recorder's ``record_loss`` / ``record_margin`` switches and
the training split's ``presentations``)."""


def sample_dtype(field: Field, num_classes: int, float_dtype: str) -> str:
    """The dtype the writer creates for a per-sample field."""
    if field.dtype == "pred":
        return pred_dtype(num_classes)
    return float_dtype if field.dtype == "float" else field.dtype

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
        EVALUATION: a single evaluation of given weights that this Trainer did not train (a pretrained or
            saved model, ``DecisionRecorder(evaluation=...)`` or ``lightning-ddd evaluate``); never epoch 0 of
            a training run. The model's name and weights' identity are in the store's metadata.
    """

    NONE = 0
    BEFORE_TRAINING = 1
    MID_EPOCH = 2
    TRAIN_PRESENTATIONS = 4
    NONFINITE_LOGITS = 8
    PROBABILITIES = 16
    VALIDATE_CALL = 32
    EVALUATION = 64


def pred_dtype(num_classes: int) -> str:
    """Return the smallest signed integer dtype able to hold class indices.

    Args:
        num_classes: number of classes (2 for binary outputs).

    Returns:
        ``"int16"`` for at most 32,767 classes, else ``"int32"``.
    """
    return "int16" if num_classes <= 32767 else "int32"
