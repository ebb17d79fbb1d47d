"""The report's sample images and explorer data: thumbnails from the stores (or an image folder), gallery
images, sprite sheets, and the per-sample data the explorer loads lazily from ``file://``.

Files written into the report folder:

* ``galleries/<id>.png``: one image per gallery example;
* ``explorer/samples.js``: the per-sample columns the explorer filters and sorts (one script, loaded at once);
* ``explorer/s-<n>.<png|jpg>``: sprite sheets of 256 thumbnails each (16 x 16), loaded by the browser only
  when a sample on them is shown;
* ``explorer/r-<n>.js``: decision trajectories (runs x rows, one bit each) of 1,000 samples per file,
  loaded on demand by a ``<script>`` element (works from ``file://``, where ``fetch`` is refused).
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SPRITE_SIDE = 16
"""Thumbnails per sprite-sheet row and column (256 per sheet)."""

RASTER_CHUNK = 1000
"""Samples per trajectory file."""

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


def _shrink(img: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 -> long side ``size`` by area averaging (box filter over integer bins)."""
    h, w = img.shape[:2]
    scale = min(1.0, size / max(h, w))
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    rows = np.minimum((np.arange(h) * th) // h, th - 1)
    cols = np.minimum((np.arange(w) * tw) // w, tw - 1)
    acc = np.zeros((th, tw, img.shape[2]))
    np.add.at(acc, (rows[:, None], cols[None, :]), img.astype(np.float64))
    count = np.bincount(rows, minlength=th)[:, None] * np.bincount(cols, minlength=tw)[None, :]
    return np.round(acc / count[..., None]).astype(np.uint8)


def _read_image(path: Path, size: int) -> np.ndarray:
    import matplotlib.image as mpimg

    img = np.asarray(mpimg.imread(path))
    if img.dtype.kind == "f":
        img = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    img = img.astype(np.uint8)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 4:
        img = img[:, :, :3]
    return _shrink(img, size)


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
        imgs = [_read_image(files[int(i)], size) for i in ids]
        h = max((im.shape[0] for im in imgs), default=1)
        w = max((im.shape[1] for im in imgs), default=1)
        out = np.zeros((len(imgs), h, w, 3), np.uint8)
        for j, im in enumerate(imgs):
            out[j, :im.shape[0], :im.shape[1]] = im if im.shape[2] == 3 else np.repeat(im, 3, axis=2)
        return out

    return ThumbnailSource(f"the folder {str(folder)!r}", np.ones(n, bool), read)


def _save_image(path: Path, img: np.ndarray, quality: int | None = None) -> None:
    import matplotlib.image as mpimg

    if quality is None:
        mpimg.imsave(path, img, format="png")
    else:
        mpimg.imsave(path, img, format="jpg", pil_kwargs={"quality": quality})


def write_gallery_images(folder: Path, source: ThumbnailSource, ids: np.ndarray) -> dict[int, str]:
    """One PNG per gallery example; returns id -> relative path."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.unique(np.asarray(ids, np.int64))
    ids = ids[source.mask[ids]]
    out = {}
    for i, img in zip(ids, source.images(ids)):
        _save_image(folder / f"{int(i)}.png", img)
        out[int(i)] = f"{folder.name}/{int(i)}.png"
    return out


def write_sprites(folder: Path, source: ThumbnailSource, n: int, chunk: int = 4096) -> dict[str, Any]:
    """Sprite sheets of every thumbnail (PNG for small sets, JPEG above 32 MiB raw); returns their layout."""
    folder.mkdir(parents=True, exist_ok=True)
    per = SPRITE_SIDE * SPRITE_SIDE
    first = source.images(np.flatnonzero(source.mask)[:1])
    h, w = first.shape[1:3]
    jpeg = n * h * w * 3 > 32 * 2**20
    ext = "jpg" if jpeg else "png"
    sheets = math.ceil(n / per)
    step = max(per, chunk - chunk % per)
    for start in range(0, n, step):
        ids = np.arange(start, min(n, start + step))
        imgs = source.images(ids)
        for s0 in range(0, ids.size, per):
            block = imgs[s0:s0 + per]
            sheet = np.zeros((SPRITE_SIDE * h, SPRITE_SIDE * w, 3), np.uint8)
            for j, im in enumerate(block):
                r, c = divmod(j, SPRITE_SIDE)
                sheet[r * h:r * h + im.shape[0], c * w:c * w + im.shape[1]] = im[:h, :w]
            used_rows = math.ceil(len(block) / SPRITE_SIDE)
            _save_image(folder / f"s-{(start + s0) // per:04d}.{ext}", sheet[:used_rows * h],
                        90 if jpeg else None)
    return {"ext": ext, "h": int(h), "w": int(w), "side": SPRITE_SIDE, "sheets": sheets}


def write_rasters(folder: Path, correct: np.ndarray, evaluated: np.ndarray) -> dict[str, Any]:
    """Decision trajectories (M, R, N) as two bit planes per sample, correct (and evaluated) then evaluated, one
    bit per run and row each, 1,000 samples per ``r-<n>.js``; returns their layout (``planes``: 2).
    """
    folder.mkdir(parents=True, exist_ok=True)
    m, r, n = correct.shape
    right = (correct & evaluated).transpose(2, 0, 1).reshape(n, m * r)
    seen = evaluated.transpose(2, 0, 1).reshape(n, m * r)
    packed = np.packbits(np.concatenate([right, seen], axis=1), axis=1)  # (N, ceil(2 M R / 8)), big-endian
    for c, start in enumerate(range(0, n, RASTER_CHUNK)):
        data = base64.b64encode(packed[start:start + RASTER_CHUNK].tobytes()).decode()
        (folder / f"r-{c:04d}.js").write_text(f"DDD.raster({c},{json.dumps(data)});\n")
    return {"runs": int(m), "rows": int(r), "bytes": int(packed.shape[1]), "chunk": RASTER_CHUNK, "planes": 2}


def write_samples(folder: Path, columns: dict[str, Any], meta: dict[str, Any]) -> None:
    """``explorer/samples.js``: the columns (lists, NaN as null) and the layout, as ``DDD.data``."""
    folder.mkdir(parents=True, exist_ok=True)

    def clean(v: Any) -> Any:
        a = np.asarray(v)
        if a.dtype.kind == "f":
            return [None if not math.isfinite(x) else round(float(x), 4) for x in a.tolist()]
        return a.tolist()

    payload = {"columns": {k: clean(v) for k, v in columns.items()}, "meta": meta}
    (folder / "samples.js").write_text("DDD.data=" + json.dumps(payload, separators=(",", ":"), allow_nan=False)
                                       + ";\n")
