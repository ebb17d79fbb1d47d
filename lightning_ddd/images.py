"""Sample images shared by the report and the study: thumbnails kept in the stores, or read from an
ImageFolder-style folder in torchvision's order (position = sample id), with Pillow for reading, shrinking and
writing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ThumbnailSource:
    """Thumbnails of one split's samples, from a store or from an image folder.

    Args:
        where: description for the page ("the store of run 'base'", "the folder ...").
        mask: (N,) ids that have a thumbnail.
        read: ``ids -> (K, h, w, C) uint8``.
    """

    def __init__(self, where: str, mask: np.ndarray, read: Any) -> None:
        self.where = where
        self.mask = mask
        self._read = read

    def images(self, ids: np.ndarray) -> np.ndarray:
        """Thumbnails (K, h, w, 3) uint8 of ``ids`` (grey repeated to RGB; zeros where missing)."""
        ids = np.asarray(ids, np.int64)
        out = self._read(ids)
        if out.shape[3] == 1:
            out = np.repeat(out, 3, axis=3)
        out[~self.mask[ids]] = 0
        return out


def store_thumbnails(paths: Sequence[tuple[str, Path]], split: str, n: int) -> tuple[ThumbnailSource | None, str]:
    """The thumbnails of the first run whose store has them for ``split`` (all runs see the same samples).

    Returns:
        ``(source or None, note)``: the note says where they come from or why there are none.
    """
    from lightning_ddd.store import DecisionStore
    from lightning_ddd.store.errors import StoreError

    problems = []
    for name, path in paths:
        try:
            store = DecisionStore(path)
            mask = store.thumbnail_mask(split)
        except (StoreError, OSError, KeyError) as err:
            problems.append(f"run {name!r}: {err}")
            continue
        if mask is None or mask.shape != (n,) or not mask.any():
            continue
        return ThumbnailSource(f"the store of run {name!r}", mask,
                               lambda ids, s=store: s.thumbnails(split, ids)), ""
    why = "No store holds thumbnails of this split (recorded with DecisionRecorder(thumbnails=True), the default, " \
          "from image inputs)"
    if problems:
        why += f"; unreadable: {'; '.join(problems)}"
    return None, why + ". Pass --images DIR (an ImageFolder-style folder of the split's images) to show them."


def stored_class_names(paths: Sequence[str | os.PathLike], split: str) -> list[str] | None:
    """The class names of the first of these stores that kept them for ``split`` (None when none did)."""
    from lightning_ddd.store import DecisionStore
    from lightning_ddd.store.errors import StoreError

    for path in paths:
        try:
            names = DecisionStore(path).class_names(split)
        except (StoreError, OSError, KeyError):
            continue
        if names:
            return names
    return None


def folder_images(folder: str | os.PathLike) -> list[Path]:
    """The images of an ImageFolder-style folder in torchvision's order (class folders sorted, files sorted
    within each): position = sample id.

    Raises:
        ValueError: the folder has no class sub-folders with images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"--images {str(root)!r} is not a folder; give an ImageFolder-style folder "
                         "(one sub-folder per class, images inside).")
    files: list[Path] = []
    for cls in sorted(p for p in root.iterdir() if p.is_dir()):
        files += sorted(p for p in cls.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"--images {str(root)!r} holds no class sub-folders with images "
                         f"({', '.join(IMAGE_SUFFIXES)}); give an ImageFolder-style folder.")
    return files


def read_image(path: Path, size: int) -> np.ndarray:
    """The image at ``path`` as (h, w, 3) uint8 RGB, its long side shrunk to at most ``size`` by area
    averaging (Pillow's box filter); never enlarged.
    """
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        scale = min(1.0, size / max(h, w))
        if scale < 1.0:
            im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                           getattr(Image, "Resampling", Image).BOX)
        return np.asarray(im, np.uint8)


def folder_thumbnails(folder: str | os.PathLike, n: int, size: int = 64) -> ThumbnailSource:
    """Thumbnails read from an ImageFolder-style folder (``report --images DIR``), on demand.

    Raises:
        ValueError: the folder holds another number of images than the split has samples.
    """
    files = folder_images(folder)
    if len(files) != n:
        raise ValueError(f"--images {str(folder)!r} holds {len(files)} images, but the split has {n} samples; give "
                         "the folder of exactly the recorded split (torchvision ImageFolder order = sample id).")

    def read(ids: np.ndarray) -> np.ndarray:
        imgs = [read_image(files[int(i)], size) for i in ids]
        h = max((im.shape[0] for im in imgs), default=1)
        w = max((im.shape[1] for im in imgs), default=1)
        out = np.zeros((len(imgs), h, w, 3), np.uint8)
        for j, im in enumerate(imgs):
            out[j, :im.shape[0], :im.shape[1]] = im if im.shape[2] == 3 else np.repeat(im, 3, axis=2)
        return out

    return ThumbnailSource(f"the folder {str(folder)!r}", np.ones(n, bool), read)


def save_image(path: Path, img: np.ndarray, quality: int | None = None) -> None:
    """Write (h, w, 3) uint8 ``img`` as PNG, or as JPEG of this ``quality``."""
    from PIL import Image

    pic = Image.fromarray(np.ascontiguousarray(img, np.uint8))
    if quality is None:
        pic.save(path, format="PNG")
    else:
        pic.save(path, format="JPEG", quality=quality)
