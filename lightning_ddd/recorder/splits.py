"""The recorder's splits: one :class:`~lightning_ddd.recorder.split_recorder.SplitRecorder` per validation
dataloader (named ``splits[i]``, ``"val"`` or ``"val_<i>"``) and one for the training presentations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from lightning_ddd.capture.thumbnails import ThumbnailOptions
from lightning_ddd.recorder.split_recorder import SplitRecorder


class Splits:
    """The split recorders of one recorder, by dataloader index (``-1``: the training split).

    Args:
        names: the validation splits' names (one per dataloader), or None for the defaults.
        train_split: the training split's name.
        class_names: class names, or a dict of them by split.
        thumbnails: the thumbnail options.
    """

    def __init__(self, names: list[str] | None, train_split: str,
                 class_names: list[str] | dict[str, list[str]] | None, thumbnails: ThumbnailOptions) -> None:
        self.names = names
        self.class_names = class_names
        self.thumbnails = thumbnails
        self.val: dict[int, SplitRecorder] = {}
        self.train = SplitRecorder(train_split, train=True)

    def name(self, dataloader_idx: int, num_dataloaders: int) -> str:
        """Name of the split of a validation dataloader: ``splits[i]``, ``"val"`` or ``"val_<i>"``.

        Raises:
            ValueError: fewer names than dataloaders.
        """
        if self.names is not None:
            if dataloader_idx >= len(self.names):
                raise ValueError(
                    f"DecisionRecorder(splits={self.names!r}) names {len(self.names)} splits, but there are "
                    f"{num_dataloaders} validation dataloaders. Name one split per dataloader."
                )
            return self.names[dataloader_idx]
        return "val" if num_dataloaders == 1 else f"val_{dataloader_idx}"

    def classes_of(self, split: str) -> list[str] | None:
        """The class names given for ``split`` (None: the dataset's own, if it has them)."""
        if isinstance(self.class_names, dict):
            names = self.class_names.get(split)
            return list(names) if names is not None else None
        return list(self.class_names) if self.class_names is not None else None

    def start_validation(self, loaders: list[Any], device: torch.device | str) -> None:
        """Prepare one split recorder per validation dataloader for an epoch."""
        for i, loader in enumerate(loaders):
            name = self.name(i, len(loaders))
            split = self.val.get(i)
            if split is None or split.name != name:
                split = self.val[i] = SplitRecorder(name)
            split.start(loader, device, self.thumbnails, self.classes_of(name))

    def start_training(self, loader: Any, device: torch.device | str) -> None:
        """Prepare the training split's recorder for an epoch."""
        self.train.start(loader, device, self.thumbnails if self.thumbnails.train else None,
                         self.classes_of(self.train.name))

    def of(self, dataloader_idx: int) -> SplitRecorder:
        """The split recorder of a validation dataloader (``-1``: the training split)."""
        return self.train if dataloader_idx < 0 else self.val[dataloader_idx]

    def with_index(self, dataloader_idx: int) -> bool:
        """Whether the dataloader's dataset is wrapped in ``WithIndex`` (its batches carry ids)."""
        split = self.train if dataloader_idx < 0 else self.val.get(dataloader_idx)
        return bool(split is not None and split.with_index)

    def validation_epochs(self, loaders: list[Any]) -> Iterator[tuple[SplitRecorder, Any]]:
        """Each started validation split with its dataloader, in dataloader order."""
        for i in sorted(self.val):
            if i < len(loaders):
                yield self.val[i], loaders[i]

    def release(self) -> None:
        """Free every split's buffers."""
        for split in (*self.val.values(), self.train):
            split.release()
