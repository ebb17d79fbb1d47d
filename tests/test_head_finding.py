"""The classifier's output found without ``module=`` (issue 23.1), in the shapes of Lightning's own examples:
``self.model(images)`` returning the loss (the ImageNet template), ``self.forward(x)`` over a feature
extractor and a head (the fine-tuning example, binary), a loss module fed by the logits; two heads refused."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from helpers import ReferenceEval, assert_store_matches, digits_loaders, trainer, val_tensors
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_ddd import DecisionRecorder


class Backbone(nn.Module):
    """A torchvision-like model: features (2-D outputs inside), a classifier, nested submodules."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(32, 24), nn.ReLU(), nn.Linear(24, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ModelAttribute(pl.LightningModule):
    """The ImageNet template: ``self.model(images)`` in the steps, the loss returned."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.model = Backbone()
        self.criterion = nn.CrossEntropyLoss()  # a submodule fed by the logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx):
        images, target = batch
        return self.criterion(self.model(images), target)

    def validation_step(self, batch, batch_idx):
        images, target = batch
        output = self.model(images)
        loss = self.criterion(output, target)
        self.log("val_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class FeatureExtractorAndHead(pl.LightningModule):
    """The fine-tuning example: ``self.forward(x)`` calls a feature extractor, then a binary head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.feature_extractor = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU())  # (B, 32) features
        self.fc = nn.Sequential(nn.Linear(32, 8), nn.ReLU(), nn.Linear(8, 1))
        nn.init.normal_(self.fc[2].weight, std=2.0)  # logits of both signs from the start (an untrained head
        nn.init.constant_(self.fc[2].bias, -0.5)  # whose logits all lie in [0, 1] would read as probabilities)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.feature_extractor(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.binary_cross_entropy_with_logits(self.forward(x), y.view(-1, 1).float())

    def validation_step(self, batch, batch_idx):
        x, y = batch
        y_logits = self.forward(x)
        self.log("val_loss", F.binary_cross_entropy_with_logits(y_logits, y.view(-1, 1).float()))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class TwoHeads(ModelAttribute):
    def __init__(self) -> None:
        super().__init__()
        self.aux = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

    def validation_step(self, batch, batch_idx):
        images, target = batch
        return self.criterion(self.model(images), target) + self.criterion(self.aux(images), target)


def _binary_loaders():
    train, val = digits_loaders()
    (xt, yt), (xv, yv) = train.dataset.tensors, val.dataset.tensors
    return (DataLoader(TensorDataset(xt, yt % 2), batch_size=64), DataLoader(TensorDataset(xv, yv % 2), batch_size=100))


def _info_messages(run):
    """The recorder's rank-zero info messages during ``run()``, taken where it calls Lightning's
    ``rank_zero_info`` (whatever logger a Lightning release logs them with, and whatever an earlier test did to
    logging's levels)."""
    import lightning.pytorch.utilities as utilities

    got: list[str] = []
    original = utilities.rank_zero_info

    def record(message, *args, **kwargs):
        got.append(str(message))
        return original(message, *args, **kwargs)

    utilities.rank_zero_info = record
    try:
        run()
    finally:
        utilities.rank_zero_info = original
    return got


@pytest.mark.parametrize("model_cls", [ModelAttribute, FeatureExtractorAndHead])
def test_the_classifier_is_found_without_options_and_recorded_exactly(tmp_path, model_cls):
    binary = model_cls is FeatureExtractorAndHead
    train, val = _binary_loaders() if binary else digits_loaders()
    x, y = val.dataset.tensors
    ref = ReferenceEval(x, y)
    rec = DecisionRecorder(tmp_path, run_name="r")  # the README's one line: no module=
    messages = _info_messages(lambda: trainer(tmp_path, [rec, ref], max_epochs=2).fit(model_cls(), train, val))
    assert_store_matches(tmp_path / "r.h5", ref)  # every row equals the saved weights' own evaluation
    chosen = "model" if model_cls is ModelAttribute else "fc"
    said = [m for m in messages if "recording the outputs of submodule" in m]
    assert len(said) == 1 and f"'{chosen}'" in said[0] and "module=" in said[0]  # said once, with the override


def test_module_option_still_overrides(tmp_path):
    x, y = val_tensors()
    ref = ReferenceEval(x, y)

    class Inner(ReferenceEval):  # the reference of the named submodule: the classifier's last Linear
        def on_validation_epoch_end(self, trainer, pl_module):
            with torch.no_grad():
                logits = pl_module.model.classifier[2](pl_module.model.classifier[1](
                    pl_module.model.classifier[0](pl_module.model.features(self.x))))
            from helpers import reference_decisions

            self.rows.append(reference_decisions(logits.numpy(), self.y.numpy()))

    ref = Inner(x, y)
    train, val = digits_loaders()
    trainer(tmp_path, [DecisionRecorder(tmp_path, run_name="r", module="model.classifier.2"), ref]).fit(
        ModelAttribute(), train, val)
    assert_store_matches(tmp_path / "r.h5", ref)


def test_two_candidate_heads_are_refused_with_both_names(tmp_path):
    train, val = digits_loaders()
    with pytest.raises(ValueError, match=r"'model' \(100, 10\), 'aux' \(100, 10\).*module="):
        trainer(tmp_path, [DecisionRecorder(tmp_path, run_name="r")]).fit(TwoHeads(), train, val)
