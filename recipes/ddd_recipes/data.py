"""Data modules of the recipes: CIFAR-10/100 and ImageNet from local folders, and the paper's Gaussian-noise
dataset generated on the fly. Nothing is downloaded: a missing folder is an error naming the layout.

Training order is a function of ``order_seed`` and the epoch (``SeededEpochSampler`` on one device, a
``DistributedSampler`` seeded with ``order_seed`` under DDP), so runs are reproducible and resumable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lightning_ddd.demo.digits import SeededEpochSampler

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

LAYOUTS = {
    "cifar10": "<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} (the python version from "
               "https://www.cs.toronto.edu/~kriz/cifar.html, extracted)",
    "cifar100": "<root>/cifar-100-python/{train,test,meta} (the python version, extracted)",
    "imagenet": "<root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG (ImageFolder layout; sort the "
                "validation images into class folders first)",
}


def _tv():  # noqa: ANN202
    try:
        import torchvision
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("The recipes need torchvision: pip install 'lightning-ddd[recipes]'.") from err
    return torchvision


class GaussianNoise(Dataset):
    """The paper's Gaussian dataset: class i is pixel-wise independent Gaussian noise per RGB channel with
    mean 128 and standard deviation i, clipped to 0..255; images are generated from (seed, split, index).

    Args:
        num_classes: classes (paper: 100).
        per_class: images per class (paper: 20,000 train, 50 or 500 test).
        size: image side.
        seed: dataset seed; split: ``"train"`` or ``"val"`` (different images).
        transform: applied to the uint8 (3, H, W) tensor converted to float in [0, 1].
    """

    def __init__(self, num_classes: int = 100, per_class: int = 50, size: int = 224, seed: int = 0,
                 split: str = "val", normalize: bool = True) -> None:
        self.num_classes, self.per_class, self.size = num_classes, per_class, size
        self.seed, self.split_id, self.normalize = seed, 0 if split == "train" else 1, normalize

    def __len__(self) -> int:
        return self.num_classes * self.per_class

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        label = index // self.per_class
        g = torch.Generator().manual_seed((self.seed * 2 + self.split_id) * 1_000_003 + index)
        x = (128 + label * torch.randn((3, self.size, self.size), generator=g)).clamp(0, 255).round() / 255.0
        if self.normalize:
            x = (x - 0.5) / 0.25
        return x, label


class RecipeData(pl.LightningDataModule):
    """CIFAR-10, CIFAR-100, ImageNet (local folders) or the Gaussian dataset, with the paper's transforms.

    Args:
        dataset: ``cifar10``, ``cifar100``, ``imagenet`` or ``gaussian``.
        root: folder of the dataset (see the layouts in the error message).
        batch_size: training batch size per process (paper: 256 in total).
        val_batch_size: validation batch size.
        num_workers: loader workers.
        order_seed: training-order seed.
        subset: ``all``, ``half_a`` or ``half_b`` (disjoint halves, fixed by ``split_seed``).
        split_seed: seed of the half split.
        fake: use torchvision's FakeData of the right shape instead of files (for tests and dry runs).
        fake_size: images per split with ``fake``.
        gaussian_per_class: (train, val) images per class of the Gaussian dataset.
        image_size: image side for ImageNet-like data.
    """

    def __init__(self, dataset: str = "cifar10", root: str = "data", batch_size: int = 256, val_batch_size: int = 256,
                 num_workers: int = 8, order_seed: int = 0, subset: str = "all", split_seed: int = 0,
                 fake: bool = False, fake_size: int = 64, gaussian_per_class: tuple[int, int] = (20000, 50),
                 image_size: int = 224) -> None:
        super().__init__()
        if dataset not in ("cifar10", "cifar100", "imagenet", "gaussian"):
            raise ValueError(f"dataset must be cifar10, cifar100, imagenet or gaussian, got {dataset!r}.")
        if subset not in ("all", "half_a", "half_b"):
            raise ValueError(f"subset must be 'all', 'half_a' or 'half_b', got {subset!r}.")
        self.save_hyperparameters()
        self.num_classes = {"cifar10": 10, "cifar100": 100, "imagenet": 1000, "gaussian": 100}[dataset]

    def _transforms(self) -> tuple[Any, Any]:
        T = _tv().transforms
        hp = self.hparams
        if hp.dataset.startswith("cifar"):
            norm = T.Normalize(CIFAR_MEAN, CIFAR_STD)
            return (T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), norm]),
                    T.Compose([T.ToTensor(), norm]))
        norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        return (T.Compose([T.RandomResizedCrop(hp.image_size), T.RandomHorizontalFlip(), T.ToTensor(), norm]),
                T.Compose([T.Resize(int(hp.image_size * 256 / 224)), T.CenterCrop(hp.image_size), T.ToTensor(),
                           norm]))

    def _check_root(self) -> Path:
        hp = self.hparams
        root = Path(hp.root)
        expected = {"cifar10": root / "cifar-10-batches-py", "cifar100": root / "cifar-100-python",
                    "imagenet": root / "train"}[hp.dataset]
        if not expected.exists() or (hp.dataset == "imagenet" and not (root / "val").exists()):
            raise FileNotFoundError(
                f"Dataset {hp.dataset!r} not found under {str(root)!r}. Expected layout: {LAYOUTS[hp.dataset]}. "
                "Nothing is downloaded: place the data there and pass --data.root, or --data.fake true for a dry run."
            )
        return root

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        tv = _tv()
        train_tf, val_tf = self._transforms()
        if hp.dataset == "gaussian":
            n_train, n_val = hp.gaussian_per_class
            self.train_set = GaussianNoise(100, n_train, hp.image_size, seed=hp.split_seed, split="train")
            self.val_set = GaussianNoise(100, n_val, hp.image_size, seed=hp.split_seed, split="val")
        elif hp.fake:
            shape = (3, 32, 32) if hp.dataset.startswith("cifar") else (3, hp.image_size, hp.image_size)
            self.train_set = tv.datasets.FakeData(hp.fake_size, shape, self.num_classes, train_tf, random_offset=0)
            self.val_set = tv.datasets.FakeData(hp.fake_size, shape, self.num_classes, val_tf, random_offset=10**6)
        else:
            root = self._check_root()
            if hp.dataset == "imagenet":
                self.train_set = tv.datasets.ImageFolder(str(root / "train"), train_tf)
                self.val_set = tv.datasets.ImageFolder(str(root / "val"), val_tf)
            else:
                cls = tv.datasets.CIFAR10 if hp.dataset == "cifar10" else tv.datasets.CIFAR100
                self.train_set = cls(str(root), train=True, transform=train_tf, download=False)
                self.val_set = cls(str(root), train=False, transform=val_tf, download=False)
        n = len(self.train_set)
        half = np.random.default_rng(hp.split_seed + 2).permutation(n)
        self.train_indices = {"all": None, "half_a": np.sort(half[: n // 2]),
                              "half_b": np.sort(half[n // 2:])}[hp.subset]

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.world_size > 1:
            data = self.train_set if self.train_indices is None else torch.utils.data.Subset(
                self.train_set, self.train_indices.tolist())
            sampler = DistributedSampler(data, num_replicas=trainer.world_size, rank=trainer.global_rank,
                                         shuffle=True, seed=hp.order_seed)
            return DataLoader(data, batch_size=hp.batch_size, sampler=sampler, num_workers=hp.num_workers,
                              pin_memory=True, persistent_workers=hp.num_workers > 0)
        sampler = SeededEpochSampler(len(self.train_set), hp.order_seed, self.train_indices)
        return DataLoader(self.train_set, batch_size=hp.batch_size, sampler=sampler, num_workers=hp.num_workers,
                          pin_memory=True, persistent_workers=hp.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        hp = self.hparams
        return DataLoader(self.val_set, batch_size=hp.val_batch_size, shuffle=False, num_workers=hp.num_workers,
                          pin_memory=True)
