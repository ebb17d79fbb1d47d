"""Small classifiers for the CPU demo and the tests, as plain LightningModules."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override


def make_network(arch: str, num_classes: int = 10, width: int = 16) -> nn.Module:
    """Build a small network for 1x8x8 images.

    Args:
        arch: ``"cnn"`` (a conv layer and a linear read-out) or ``"mlp"`` (one hidden layer).
        num_classes: outputs.
        width: channels / hidden units.
    """
    if arch == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(width * 16, num_classes),
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
        milestones: epochs after which the learning rate is divided by 10 (the paper: 30 and 60).
        weight_decay: L2 penalty.
    """

    def __init__(self, arch: str = "cnn", lr: float = 0.05, optimizer: str = "sgd", momentum: float = 0.9,
                 width: int = 16, init_seed: int = 0, num_classes: int = 10, milestones: list[int] | None = None,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.net = make_network(arch, num_classes, width)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @override
    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch[0], batch[1]
        loss = F.cross_entropy(self(x), y)
        return loss

    @override
    def validation_step(self, batch, batch_idx, dataloader_idx=0):  # noqa: ANN001, ANN201
        x, y = batch[0], batch[1]
        loss = F.cross_entropy(self(x), y)
        self.log("val_loss", loss, add_dataloader_idx=False)
        return loss

    @override
    def configure_optimizers(self):  # noqa: ANN201
        hp = self.hparams
        if hp.optimizer == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            opt = torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay,
                                  nesterov=hp.optimizer == "nesterov")
        if not hp.milestones:
            return opt
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.MultiStepLR(opt, list(hp.milestones), 0.1)}
