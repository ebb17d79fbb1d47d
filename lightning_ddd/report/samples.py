"""The report's sample images and explorer data: gallery images, sprite sheets, and the per-sample data the
explorer loads lazily from ``file://`` (the thumbnails themselves come from :mod:`lightning_ddd.images`).

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
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ddd.images import ThumbnailSource, save_image

SPRITE_SIDE = 16
"""Thumbnails per sprite-sheet row and column (256 per sheet)."""

RASTER_CHUNK = 1000
"""Samples per trajectory file."""

def write_gallery_images(folder: Path, source: ThumbnailSource, ids: np.ndarray) -> dict[int, str]:
    """One PNG per gallery example; returns id -> relative path."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.unique(np.asarray(ids, np.int64))
    ids = ids[source.mask[ids]]
    out = {}
    for i, img in zip(ids, source.images(ids)):
        save_image(folder / f"{int(i)}.png", img)
        out[int(i)] = f"{folder.name}/{int(i)}.png"
    return out


def write_sprites(folder: Path, source: ThumbnailSource, n: int, chunk: int = 4096) -> dict[str, object]:
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
            save_image(folder / f"s-{(start + s0) // per:04d}.{ext}", sheet[:used_rows * h],
                        90 if jpeg else None)
    return {"ext": ext, "h": int(h), "w": int(w), "side": SPRITE_SIDE, "sheets": sheets}


def write_rasters(folder: Path, correct: np.ndarray, evaluated: np.ndarray) -> dict[str, object]:
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


def write_samples(folder: Path, columns: dict[str, object], meta: dict[str, object]) -> None:
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
