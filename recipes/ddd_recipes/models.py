"""The image classifier of the recipes: torchvision ResNet-18 (optionally with a 3x3 CIFAR stem) or
DenseNet-121, SGD with momentum (optionally Nesterov), step schedule, initialisation seeded independently."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn


def build_network(arch: str, num_classes: int, cifar_stem: bool) -> nn.Module:
    """ResNet-18 or DenseNet-121 from torchvision (random init); the CIFAR stem is a 3x3 conv, no max-pool."""
    try:
        import torchvision
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("The recipes need torchvision: pip install 'lightning-ddd[recipes]'.") from err
    if arch == "resnet18":
        net = torchvision.models.resnet18(num_classes=num_classes)
        if cifar_stem:
            net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            net.maxpool = nn.Identity()
        return net
    if arch == "densenet121":
        net = torchvision.models.densenet121(num_classes=num_classes)
        if cifar_stem:
            net.features.conv0 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            net.features.pool0 = nn.Identity()
        return net
    raise ValueError(f"arch must be 'resnet18' or 'densenet121', got {arch!r}.")


class ImageClassifier(pl.LightningModule):
    """The paper's training setup (§3).

    Args:
        arch: ``resnet18`` or ``densenet121``.
        num_classes: outputs.
        cifar_stem: 3x3 stem for 32x32 images.
        lr: learning rate (paper: 0.1).
        momentum: SGD momentum (0.9).
        weight_decay: 1e-4.
        optimizer: ``sgd`` or ``nesterov``.
        milestones: epochs after which lr is divided by 10 (paper: 30, 60).
        init_seed: seed of the weight initialisation.
    """

    def __init__(self, arch: str = "resnet18", num_classes: int = 1000, cifar_stem: bool = False, lr: float = 0.1,
                 momentum: float = 0.9, weight_decay: float = 1e-4, optimizer: str = "sgd",
                 milestones: list[int] | None = None, init_seed: int = 0) -> None:
        super().__init__()
        if optimizer not in ("sgd", "nesterov"):
            raise ValueError(f"optimizer must be 'sgd' or 'nesterov', got {optimizer!r}.")
        self.save_hyperparameters()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.net = build_network(arch, num_classes, cifar_stem)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        loss = F.cross_entropy(self(batch[0]), batch[1])
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        logits = self(batch[0])
        self.log("val_acc", (logits.argmax(1) == batch[1]).float().mean(), sync_dist=True)
        return logits

    def configure_optimizers(self):  # noqa: ANN201
        hp = self.hparams
        opt = torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay,
                              nesterov=hp.optimizer == "nesterov")
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(hp.milestones or [30, 60]), 0.1)
        return {"optimizer": opt, "lr_scheduler": sched}
