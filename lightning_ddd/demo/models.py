"""Small classifiers for the CPU demo and the tests, as plain LightningModules."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn


def make_network(arch: str, num_classes: int = 10, width: int = 16) -> nn.Module:
    """Build a small network for 1x8x8 images.

    Args:
        arch: ``"cnn"`` (two conv layers) or ``"mlp"`` (one hidden layer).
        num_classes: outputs.
        width: channels / hidden units.
    """
    if arch == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(width, num_classes),
        )
    if arch == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, width * 2), nn.ReLU(), nn.Linear(width * 2, num_classes))
    raise ValueError(f"arch must be 'cnn' or 'mlp', got {arch!r}.")


class DigitsClassifier(pl.LightningModule):
    """A classifier whose ``validation_step`` returns only the loss; the recorder captures ``self(x)``.

    Args:
        arch: network (see :func:`make_network`).
        lr: learning rate.
        optimizer: ``"sgd"``, ``"nesterov"`` or ``"adam"``.
        momentum: SGD momentum.
        width: network width.
        init_seed: seed of the weight initialisation (independent of the global seed).
        num_classes: outputs.
    """

    def __init__(self, arch: str = "cnn", lr: float = 0.05, optimizer: str = "sgd", momentum: float = 0.9,
                 width: int = 16, init_seed: int = 0, num_classes: int = 10) -> None:
        super().__init__()
        self.save_hyperparameters()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.net = make_network(arch, num_classes, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch[0], batch[1]
        loss = F.cross_entropy(self(x), y)
        return loss

    def validation_step(self, batch, batch_idx, dataloader_idx=0):  # noqa: ANN001, ANN201
        x, y = batch[0], batch[1]
        loss = F.cross_entropy(self(x), y)
        self.log("val_loss", loss, add_dataloader_idx=False)
        return loss

    def configure_optimizers(self):  # noqa: ANN201
        hp = self.hparams
        if hp.optimizer == "adam":
            return torch.optim.Adam(self.parameters(), lr=hp.lr)
        return torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=hp.momentum, nesterov=hp.optimizer == "nesterov")
