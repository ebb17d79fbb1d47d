"""The unit the writer appends: one evaluation of one split, as numpy arrays."""

from __future__ import annotations

import dataclasses

import numpy as np

from lightning_ddd.store.format import OPTIONAL_SAMPLE_FIELDS, RowFlag


@dataclasses.dataclass
class Row:
    """One recorded evaluation of one split.

    Arrays are indexed by sample id (0..N-1) and have shape (N,). Cells of samples that were not evaluated
    (``evaluated`` False) are ignored by the writer and read back as missing.

    Attributes:
        split: split name, e.g. ``"val"``.
        global_step: the trainer's global step when the row was recorded (the row key).
        epoch: completed training epochs (0 before training; fractional for mid-epoch validations).
        flags: :class:`RowFlag` bits.
        num_classes: number of classes of the model output.
        evaluated: bool (N,), which samples this row holds.
        correct: bool (N,), top-1 prediction equals the target.
        pred: int (N,), predicted class.
        targets: int (N,), the target of each evaluated sample.
        loss: optional float (N,), per-sample cross-entropy.
        margin: optional float (N,), target logit minus the largest other logit.
        presentations: optional uint8 (N,), how often each sample was presented (training split).
        wall_time: seconds since the epoch (``time.time()``) when the row was made.
        thumbnail_ids: optional int (K,), the ids whose thumbnails this row carries.
        thumbnails: optional uint8 (K, h, w, C), one small RGB (C = 3) or grey (C = 1) image per
            ``thumbnail_ids`` entry; the store keeps the first thumbnail of each id.
        class_names: optional class names (index = class), kept by the store with the split.
    """

    split: str
    global_step: int
    epoch: float
    flags: RowFlag
    num_classes: int
    evaluated: np.ndarray
    correct: np.ndarray
    pred: np.ndarray
    targets: np.ndarray
    loss: np.ndarray | None = None
    margin: np.ndarray | None = None
    presentations: np.ndarray | None = None
    wall_time: float = 0.0
    thumbnail_ids: np.ndarray | None = None
    thumbnails: np.ndarray | None = None
    class_names: list[str] | None = None

    @property
    def num_samples(self) -> int:
        """Number of samples N of the split."""
        return int(self.evaluated.shape[0])

    def sample_fields(self) -> dict[str, np.ndarray]:
        """Return the per-sample arrays present in this row, by store field name."""
        fields = {"evaluated": self.evaluated, "correct": self.correct, "pred": self.pred}
        for name in OPTIONAL_SAMPLE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                fields[name] = value
        return fields

    def extra_arrays(self) -> dict[str, np.ndarray]:
        """The arrays kept beside the rows (thumbnails), by name."""
        if self.thumbnails is None or self.thumbnail_ids is None:
            return {}
        return {"thumbnail_ids": self.thumbnail_ids, "thumbnails": self.thumbnails}
