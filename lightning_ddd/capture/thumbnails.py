"""Small thumbnails of the validation images, made on the device and moved with the epoch's one transfer.

When a batch's inputs are images ((B, C, H, W) with C = 1 or 3, float or uint8), each is downsampled on the
device (area averaging, long side ``size`` px), then brought to [0, 1] (uint8 / 255; the user's
``(mean, std)`` undone; else each thumbnail stretched to its own min-max), and kept as uint8 (B, h, w, C) with
its ids in device lists: no host synchronisation per batch. At epoch end :func:`gather_thumbnails` moves them
to the host in one transfer (every rank's, under DDP). The store keeps the first thumbnail of each id.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lightning_ddd.capture.gather import AllGather, gather_padded

IMAGE_KEYS = ("image", "images", "x", "input", "inputs", "pixel_values", "img")


@dataclasses.dataclass
class ThumbnailOptions:
    """Whether and how the recorder keeps a thumbnail per sample in the store.

    Attributes:
        enabled: keep thumbnails of image inputs (validation splits).
        size: the long side in pixels (at most; never larger than the image).
        max_mb: the most a split's thumbnails may take (raw); the size shrinks to fit, down to 8 px, else none.
        train: also for the training split (off by default).
        unnormalize: ``(mean, std)`` per channel to undo (else per-image min-max, or /255 for uint8).
    """

    enabled: bool = True
    size: int = 64
    max_mb: float = 1024.0
    train: bool = False
    unnormalize: tuple[Sequence[float], Sequence[float]] | None = None

    def __post_init__(self) -> None:
        if self.size < 8 or self.max_mb <= 0:
            raise ValueError(f"Thumbnails need size >= 8 px and max_mb > 0, got {self.size} and {self.max_mb}.")


def dataset_class_names(dataset: Any) -> list[str] | None:
    """``dataset.classes`` (torchvision's convention), looking through wrappers with a ``.dataset``
    (``Subset``, :class:`~lightning_ddd.WithIndex`), when it is a list of strings; else None.
    """
    seen = 0
    while dataset is not None and seen < 8:
        names = getattr(dataset, "classes", None)
        if isinstance(names, (list, tuple)) and names and all(isinstance(c, str) for c in names):
            return list(names)
        dataset = getattr(dataset, "dataset", None)
        seen += 1
    return None


def find_images(batch: Any) -> torch.Tensor | None:
    """The batch's images: ``batch[0]`` of a tuple or list, or an image key of a dict, when it is a
    (B, 1 or 3, H, W) float or uint8 tensor; else None.
    """
    x: Any = None
    if isinstance(batch, Mapping):
        x = next((batch[k] for k in IMAGE_KEYS if k in batch), None)
    elif isinstance(batch, Sequence) and not isinstance(batch, str) and batch:
        x = batch[0]
    elif isinstance(batch, torch.Tensor):
        x = batch
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3) or min(x.shape[2:]) < 1:
        return None
    if not (x.is_floating_point() or x.dtype == torch.uint8):
        return None
    return x


def thumbnail_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(h, w) with the long side ``size`` (never larger than the image), the aspect ratio kept."""
    scale = min(1.0, size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def size_for_budget(num_samples: int, height: int, width: int, channels: int, size: int, max_mb: float) -> int:
    """The largest long side <= ``size`` whose thumbnails of ``num_samples`` images fit in ``max_mb``
    (0 when even 8 px do not fit).
    """
    budget = max_mb * 2**20
    for s in range(size, 7, -1):
        h, w = thumbnail_shape(height, width, s)
        if num_samples * h * w * channels <= budget:
            return s
    return 0


class ThumbnailBuffer:
    """One split's thumbnails for one epoch, on the device.

    Args:
        size: the long side of a thumbnail in pixels.
        unnormalize: optional ``(mean, std)`` per channel to undo before scaling to [0, 1].
    """

    def __init__(self, size: int, unnormalize: tuple[Sequence[float], Sequence[float]] | None = None) -> None:
        self.size = int(size)
        self.unnormalize = unnormalize
        self.images: list[torch.Tensor] = []
        self.ids: list[torch.Tensor] = []
        self.shape: tuple[int, int, int] | None = None  # (h, w, C) of the first batch
        self._affine: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}  # (mean, std) per device, once

    def reset(self) -> None:
        """Forget the previous epoch."""
        self.images.clear()
        self.ids.clear()

    def add(self, images: torch.Tensor, ids: torch.Tensor) -> None:
        """Downsample one batch on its device and keep it (no synchronisation)."""
        x = images.detach()
        h, w = thumbnail_shape(int(x.shape[2]), int(x.shape[3]), self.size)
        shape = (h, w, int(x.shape[1]))
        if self.shape is None:
            self.shape = shape
        elif shape != self.shape:
            return  # images of another size in this split: keep the first size only
        # downsample first: area averaging is linear, so undoing (mean, std) or /255 afterwards is exact, and
        # every other operation runs on the small image
        x = x.float()
        if (h, w) != tuple(x.shape[2:]):
            x = F.interpolate(x, size=(h, w), mode="area")
        if images.dtype == torch.uint8:
            x = x / 255.0
        elif self.unnormalize is not None:
            if x.device not in self._affine:  # one host-to-device copy per device, never one per batch
                self._affine[x.device] = tuple(  # type: ignore[assignment]
                    torch.as_tensor(v, dtype=torch.float32, device=x.device).reshape(1, -1, 1, 1)
                    for v in self.unnormalize)
            mean, std = self._affine[x.device]
            x = x * std + mean
        else:  # each thumbnail stretched to its own range
            x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
            lo = x.amin(dim=(1, 2, 3), keepdim=True)
            hi = x.amax(dim=(1, 2, 3), keepdim=True)
            x = (x - lo) / (hi - lo).clamp_min(1e-12)
        x = torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0)
        thumbs = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        self.images.append(thumbs.reshape(thumbs.shape[0], -1))
        self.ids.append(ids.reshape(-1).to(thumbs.device, torch.int64, non_blocking=True))

    def packed(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, h*w*C) uint8 thumbnails and (K,) int64 ids of the epoch."""
        if not self.images:
            width = math.prod(self.shape) if self.shape else 0
            return (torch.zeros((0, width), dtype=torch.uint8, device=device),
                    torch.zeros((0,), dtype=torch.int64, device=device))
        return torch.cat(self.images), torch.cat(self.ids)


def gather_thumbnails(buffer: ThumbnailBuffer, device: torch.device, all_gather: AllGather | None
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """Every rank's thumbnails on the host: ``(ids (K,), images (K, h, w, C))``, or None when none were made
    (a collective under DDP: call on every rank).
    """
    images, ids = buffer.packed(device)
    if all_gather is not None:
        size = torch.tensor([images.shape[0], images.shape[1]], dtype=torch.int64, device=device)
        sizes = all_gather(size).reshape(-1, 2).cpu().tolist()
        widths = {int(w) for k, w in sizes if k}
        if len(widths) > 1:
            return None  # ranks saw images of different sizes: no thumbnails this epoch
        width = widths.pop() if widths else 0
        if images.shape[1] != width:
            images = torch.zeros((0, width), dtype=torch.uint8, device=device)
        counts = [int(k) for k, _ in sizes]
        images = torch.cat(gather_padded(images, counts, all_gather))
        ids = torch.cat(gather_padded(ids[:, None], counts, all_gather))[:, 0]
    if not images.shape[0] or buffer.shape is None:
        return None
    return ids.cpu().numpy(), images.cpu().numpy().reshape(-1, *buffer.shape)
