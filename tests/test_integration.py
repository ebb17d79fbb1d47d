"""Both Lightning flavours, LightningCLI, epoch 0 without changing the run, no per-batch host sync, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import ReferenceEval, assert_store_matches, digits_loaders, trainer, val_tensors

import lightning_ddd
from lightning_ddd import DecisionRecorder, DecisionStore, validate_before_fit
from lightning_ddd.demo.models import DigitsClassifier


def test_import_does_not_load_torch_or_lightning():
    code = (
        "import sys, json, lightning_ddd, lightning_ddd.analysis; from lightning_ddd import DecisionStore, WithIndex;"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'lightning', 'pytorch_lightning', 'lightning_fabric'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_recorder_classes_subclass_their_own_callback():
    import pytorch_lightning

    from lightning_ddd.pytorch_lightning import DecisionRecorder as PLRecorder

    assert issubclass(DecisionRecorder, pl.Callback) and not issubclass(DecisionRecorder, pytorch_lightning.Callback)
    assert issubclass(PLRecorder, pytorch_lightning.Callback) and not issubclass(PLRecorder, pl.Callback)
    assert lightning_ddd.DecisionRecorder is DecisionRecorder


class DropoutModel(DigitsClassifier):
    def __init__(self) -> None:
        super().__init__(arch="mlp")
        self.drop = torch.nn.Dropout(0.3)

    def forward(self, x):
        return self.net[2:](self.drop(self.net[:2](x)))


def _final_weights(tmp_path, name, callbacks, sanity, before=None):
    pl.seed_everything(7)
    train, val = digits_loaders(shuffle_train=True)
    model = DropoutModel()
    t = trainer(tmp_path / name, callbacks, num_sanity_val_steps=sanity, max_epochs=2)
    if before == "helper":
        validate_before_fit(t, model, dataloaders=val)
    elif before == "plain":
        t.validate(model, val, verbose=False)
    t.fit(model, train, val)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_epoch_zero_leaves_training_bit_identical(tmp_path):
    baseline = _final_weights(tmp_path, "base", [], 0)
    recorded = _final_weights(tmp_path, "rec", [DecisionRecorder(tmp_path, run_name="sanity")], -1)
    helper = _final_weights(tmp_path, "helper", [DecisionRecorder(tmp_path, run_name="helper")], 0, before="helper")
    plain = _final_weights(tmp_path, "plain", [], 0, before="plain")
    assert torch.equal(baseline, recorded)
    assert torch.equal(baseline, helper)
    assert not torch.equal(baseline, plain)  # the check is sensitive: a plain validate() changes the run
    for name, flags in (("sanity", 1), ("helper", 1 | 32)):  # the helper: BEFORE_TRAINING | VALIDATE_CALL
        rows = DecisionStore(tmp_path / f"{name}.h5").rows("val")
        np.testing.assert_array_equal(rows["epoch"], [0, 1, 2])
        assert rows["flags"][0] == flags


class forbid_host_sync:
    """Make the usual host-device synchronisation points raise."""

    NAMES = ("item", "cpu", "tolist", "numpy", "__bool__", "__int__", "__float__")

    def __enter__(self):
        self.saved = {n: getattr(torch.Tensor, n) for n in self.NAMES}

        def boom(name):
            def raiser(*args, **kwargs):
                raise AssertionError(f"host sync: Tensor.{name} called in a per-batch hook")
            return raiser

        for n in self.NAMES:
            setattr(torch.Tensor, n, boom(n))

    def __exit__(self, *exc):
        for n, f in self.saved.items():
            setattr(torch.Tensor, n, f)


class StrictRecorder(DecisionRecorder):
    def on_validation_batch_start(self, *args, **kwargs):
        with forbid_host_sync():
            super().on_validation_batch_start(*args, **kwargs)

    def on_validation_batch_end(self, *args, **kwargs):
        with forbid_host_sync():
            super().on_validation_batch_end(*args, **kwargs)

    def _forward_hook(self, *args):
        with forbid_host_sync():
            super()._forward_hook(*args)


def test_forbid_host_sync_catches_syncs():
    with forbid_host_sync(), pytest.raises(AssertionError, match="Tensor.item"):
        torch.ones(2).sum().item()


@pytest.mark.parametrize("ids", ["sampler", "batch"])
def test_per_batch_hooks_do_not_sync(tmp_path, ids):
    x, y = val_tensors()
    train, val = digits_loaders()
    if ids == "batch":
        from torch.utils.data import DataLoader

        from lightning_ddd import WithIndex
        val = DataLoader(WithIndex(val.dataset), batch_size=100)
    rec, ref = StrictRecorder(tmp_path, run_name="strict"), ReferenceEval(x, y)
    trainer(tmp_path, [rec, ref]).fit(DigitsClassifier(), train, val)
    assert_store_matches(tmp_path / "strict.h5", ref)


def test_lightning_cli_class_path(tmp_path):
    from lightning.pytorch.cli import LightningCLI

    from lightning_ddd.demo.digits import DigitsDataModule

    args = {
        "trainer": {"max_epochs": 1, "logger": False, "enable_progress_bar": False, "enable_checkpointing": False,
                    "num_sanity_val_steps": -1, "default_root_dir": str(tmp_path),
                    "callbacks": [{"class_path": "lightning_ddd.DecisionRecorder",
                                   "init_args": {"dirpath": str(tmp_path), "run_name": "cli"}}]},
        "model": {"arch": "mlp"},
    }
    cli = LightningCLI(DigitsClassifier, DigitsDataModule, run=False, args=args, save_config_callback=None)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert DecisionStore(tmp_path / "cli.h5").info("val").num_rows == 2


# ---------------------------------------------------------------- pytorch_lightning flavour
def _pl_model():
    import pytorch_lightning

    class PLModel(pytorch_lightning.LightningModule):
        def __init__(self, lr: float = 0.05) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                           torch.nn.Linear(32, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx):
            self(batch[0])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    return PLModel


@pytest.mark.parametrize("alone", [True, False])
def test_pytorch_lightning_recorder(tmp_path, alone):
    import pytorch_lightning

    from lightning_ddd.pytorch_lightning import DecisionRecorder as PLRecorder

    x, y = val_tensors()
    train, val = digits_loaders()
    rec = PLRecorder(tmp_path, run_name="plr")
    callbacks = rec if alone else [rec, pytorch_lightning.callbacks.Timer()]
    t = pytorch_lightning.Trainer(callbacks=callbacks, max_epochs=2, logger=False, enable_progress_bar=False,
                                  enable_checkpointing=False, num_sanity_val_steps=-1, accelerator="cpu",
                                  default_root_dir=str(tmp_path), enable_model_summary=False)
    model = _pl_model()()
    t.fit(model, train, val)
    s = DecisionStore(tmp_path / "plr.h5")
    assert s.info("val").num_rows == 3
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
    np.testing.assert_array_equal(s.read("val", "pred")[-1], pred)


def test_lightning_recorder_alone(tmp_path):
    train, val = digits_loaders()
    t = pl.Trainer(callbacks=DecisionRecorder(tmp_path, run_name="alone"), max_epochs=1, logger=False,
                   enable_progress_bar=False, enable_checkpointing=False, num_sanity_val_steps=-1,
                   default_root_dir=str(tmp_path), enable_model_summary=False)
    t.fit(DigitsClassifier(), train, val)
    assert DecisionStore(tmp_path / "alone.h5").info("val").num_rows == 2


def test_pytorch_lightning_cli_class_path(tmp_path):
    from pytorch_lightning.cli import LightningCLI

    train, val = digits_loaders()
    args = {
        "trainer": {"max_epochs": 1, "logger": False, "enable_progress_bar": False, "enable_checkpointing": False,
                    "num_sanity_val_steps": -1, "default_root_dir": str(tmp_path),
                    "callbacks": [{"class_path": "lightning_ddd.pytorch_lightning.DecisionRecorder",
                                   "init_args": {"dirpath": str(tmp_path), "run_name": "plcli"}}]},
    }
    cli = LightningCLI(_pl_model(), run=False, args=args, save_config_callback=None)
    cli.trainer.fit(cli.model, train, val)
    assert DecisionStore(tmp_path / "plcli.h5").info("val").num_rows == 2
