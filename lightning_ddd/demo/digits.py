"""sklearn's bundled handwritten digits (1,797 real 8x8 images) as a LightningDataModule."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset
from typing_extensions import override

NOISE_SEED = 123


def noise_levels(n: int, pixel_noise: float | tuple[float, float]) -> np.ndarray:
    """Each image's noise standard deviation: ``pixel_noise`` for all, or for ``(low, high)`` one level per image
    drawn uniformly in [low, high] from a constant seed (the same for every run).
    """
    if isinstance(pixel_noise, (tuple, list)):
        low, high = float(pixel_noise[0]), float(pixel_noise[1])
        if not 0 <= low <= high:
            raise ValueError(f"pixel_noise (low, high) needs 0 <= low <= high, got {pixel_noise!r}.")
        return np.random.default_rng(NOISE_SEED + 1).uniform(low, high, n).astype(np.float32)
    return np.full(n, float(pixel_noise), np.float32)


def load_digits_arrays(seed: int = 0, val_fraction: float = 0.45, pixel_noise: float | tuple[float, float] = 0.0
                       ) -> tuple[np.ndarray, ...]:
    """Load the digits and split them into train and validation sets by a seeded permutation.

    Args:
        seed: split seed (fixed across the runs of one experiment).
        val_fraction: share of images in the validation set.
        pixel_noise: standard deviation of Gaussian noise added once to every pixel (a fixed corruption drawn
            from a constant seed, the same for every run), which makes the task hard enough that small
            networks stay near 70 % accuracy, like the paper's ImageNet models; ``(low, high)``: each image
            gets its own level, uniform in [low, high] (:func:`noise_levels`), so difficulty varies per image
            and a person can see it (the demo's choice).

    Returns:
        ``x_train, y_train, x_val, y_val`` with images as float32 (n, 1, 8, 8) scaled to [0, 1].
    """
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError:
        raise ModuleNotFoundError("The demo's data are scikit-learn's bundled digits: pip install "
                                  "'lightning-ddd[demo]'.") from None

    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[:, None]
    sigma = noise_levels(len(x), pixel_noise)
    if sigma.any():
        noise = np.random.default_rng(NOISE_SEED).normal(0, 1, x.shape).astype(np.float32)
        x = x + sigma[:, None, None, None] * noise
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = int(round(len(y) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


class SeededEpochSampler(torch.utils.data.Sampler[int]):
    """Shuffles with a permutation that is a function of (seed, epoch) only, so runs resume exactly.

    Args:
        size: dataset length.
        seed: data-order seed.
        subset: optional indices to draw from (half-data conditions).
    """

    def __init__(self, size: int, seed: int, subset: np.ndarray | None = None) -> None:
        self.size = size
        self.seed = seed
        self.subset = np.arange(size) if subset is None else np.asarray(subset)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at each epoch start."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.subset)

    @override
    def __iter__(self):  # noqa: ANN204
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(len(self.subset), generator=g).numpy()
        return iter(self.subset[perm].tolist())


class DigitsDataModule(pl.LightningDataModule):
    """sklearn digits, split once by ``split_seed``; training order a function of ``order_seed`` and epoch.

    Args:
        batch_size: training batch size.
        order_seed: data-order seed.
        split_seed: train/validation split seed (keep it fixed across runs compared together).
        subset: ``"all"``, ``"half_a"`` or ``"half_b"`` (two disjoint halves of the training set).
        val_batch_size: validation batch size.
        with_index: wrap the datasets so batches carry sample ids (x, y, index).
        pixel_noise: fixed Gaussian pixel noise (see :func:`load_digits_arrays`).
    """

    def __init__(self, batch_size: int = 32, order_seed: int = 0, split_seed: int = 0, subset: str = "all",
                 val_batch_size: int = 256, with_index: bool = False,
                 pixel_noise: float | tuple[float, float] = 0.0) -> None:
        super().__init__()
        if subset not in ("all", "half_a", "half_b"):
            raise ValueError(f"subset must be 'all', 'half_a' or 'half_b', got {subset!r}.")
        self.batch_size = batch_size
        self.order_seed = order_seed
        self.split_seed = split_seed
        self.subset = subset
        self.val_batch_size = val_batch_size
        self.with_index = with_index
        self.pixel_noise = pixel_noise
        self.num_classes = 10

    @override
    def setup(self, stage: str | None = None) -> None:
        x_tr, y_tr, x_val, y_val = load_digits_arrays(self.split_seed, pixel_noise=self.pixel_noise)
        self.train_set: Dataset = TensorDataset(torch.from_numpy(x_tr), torch.from_numpy(y_tr))
        self.val_set: Dataset = TensorDataset(torch.from_numpy(x_val), torch.from_numpy(y_val))
        if self.with_index:
            from lightning_ddd.with_index import WithIndex

            self.train_set, self.val_set = WithIndex(self.train_set), WithIndex(self.val_set)  # type: ignore[assignment]
        half = np.random.default_rng(self.split_seed + 2).permutation(len(y_tr))
        cut = len(half) // 2
        self.train_indices = {"all": None, "half_a": np.sort(half[:cut]), "half_b": np.sort(half[cut:])}[self.subset]

    @override
    def train_dataloader(self) -> DataLoader:
        sampler = SeededEpochSampler(len(self.train_set), self.order_seed, self.train_indices)  # type: ignore[arg-type]
        return DataLoader(self.train_set, batch_size=self.batch_size, sampler=sampler)

    @override
    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.val_batch_size, shuffle=False)

