"""Test helpers: tiny trainers on sklearn digits and an independent reference evaluation."""

from __future__ import annotations

import contextlib
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_ddd.demo.digits import load_digits_arrays
from lightning_ddd.demo.models import DigitsClassifier


def trainer(tmp_path: Any, callbacks: list, **kw: Any) -> pl.Trainer:
    """A quiet CPU trainer."""
    opts = dict(default_root_dir=str(tmp_path), logger=False, enable_progress_bar=False,
                enable_checkpointing=False, enable_model_summary=False, accelerator="cpu", devices=1,
                max_epochs=2, num_sanity_val_steps=-1)
    opts.update(kw)
    return pl.Trainer(callbacks=callbacks, **opts)


def digits_loaders(batch_size: int = 64, val_batch_size: int = 100, n_val: int | None = None,
                   shuffle_train: bool = False) -> tuple[DataLoader, DataLoader]:
    x_tr, y_tr, x_val, y_val = load_digits_arrays(0)
    if n_val is not None:
        x_val, y_val = x_val[:n_val], y_val[:n_val]
    train = DataLoader(TensorDataset(torch.from_numpy(x_tr), torch.from_numpy(y_tr)), batch_size=batch_size,
                       shuffle=shuffle_train)
    val = DataLoader(TensorDataset(torch.from_numpy(x_val), torch.from_numpy(y_val)), batch_size=val_batch_size)
    return train, val


def reference_decisions(logits: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Independent float64 numpy computation of what the recorder stores."""
    z = logits.astype(np.float64)
    if z.ndim == 1 or z.shape[1] == 1:
        z = z.reshape(-1)
        pred = (z > 0).astype(np.int64)
        loss = np.logaddexp(0, -z) * targets + np.logaddexp(0, z) * (1 - targets)
        margin = np.where(targets == 1, z, -z)
    else:
        pred = z.argmax(1)
        lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
        zt = z[np.arange(len(z)), targets]
        loss = lse - zt
        other = z.copy()
        other[np.arange(len(z)), targets] = -np.inf
        margin = zt - other.max(1)
    return {"pred": pred, "correct": pred == targets, "loss": loss, "margin": margin}


class ReferenceEval(pl.Callback):
    """At every validation epoch end, evaluates the whole validation set with the same weights, in float32.

    Args:
        x: validation inputs; y: targets.
        autocast: evaluate under the same CPU bf16 autocast as ``bf16-mixed``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, autocast: bool = False) -> None:
        self.x, self.y, self.autocast = x, y, autocast
        self.rows: list[dict[str, np.ndarray]] = []

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()
        with torch.no_grad(), ctx:
            logits = pl_module(self.x)
        self.rows.append(reference_decisions(logits.float().numpy(), self.y.numpy()))


class ReturnLogits(DigitsClassifier):
    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        return self(batch[0])


class ReturnDict(DigitsClassifier):
    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        logits = self.net(batch[0])
        return {"loss": F.cross_entropy(logits, batch[1]), "logits": logits}


class CallsSubmodule(DigitsClassifier):
    """Never calls self(...): only the submodule ``net`` sees the inputs."""

    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        return F.cross_entropy(self.net(batch[0]), batch[1])

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        return F.cross_entropy(self.net(batch[0]), batch[1])


class DictBatchModel(DigitsClassifier):
    """Batches are dicts {"image", "label", "idx"}."""

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        return F.cross_entropy(self(batch["image"]), batch["label"])

    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        self(batch["image"])


class DictDataset(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor, with_id: bool = True) -> None:
        self.x, self.y, self.with_id = x, y, with_id

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        item = {"image": self.x[i], "label": self.y[i]}
        if self.with_id:
            item["idx"] = i
        return item


class BinaryModel(pl.LightningModule):
    """Binary classifier with (B,) or (B, 1) logits."""

    def __init__(self, squeeze: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1))
        self.squeeze = squeeze

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        return z.squeeze(1) if self.squeeze else z

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        z = self(batch[0]).reshape(-1)
        return F.binary_cross_entropy_with_logits(z, batch[1].float())

    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        self(batch[0])

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


def val_tensors(n_val: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    _, _, x_val, y_val = load_digits_arrays(0)
    if n_val is not None:
        x_val, y_val = x_val[:n_val], y_val[:n_val]
    return torch.from_numpy(x_val), torch.from_numpy(y_val)


def assert_store_matches(store_path: Any, ref: ReferenceEval, split: str = "val", *, rows: list[int] | None = None,
                         atol: float = 1e-5) -> None:
    """Every stored row equals the reference evaluation at the same moment."""
    from lightning_ddd import DecisionStore

    s = DecisionStore(store_path)
    refs = ref.rows if rows is None else [ref.rows[i] for i in rows]
    assert s.info(split).num_rows == len(refs)
    assert s.read(split, "evaluated").all()
    for name in ("correct", "pred"):
        got = s.read(split, name)
        for r, want in enumerate(refs):
            np.testing.assert_array_equal(got[r], want[name], err_msg=f"{name} row {r}")
    for name in ("loss", "margin"):
        got = s.read(split, name)
        for r, want in enumerate(refs):
            np.testing.assert_allclose(got[r], want[name], atol=atol, rtol=1e-5, err_msg=f"{name} row {r}")


class FileReference(pl.Callback):
    """Like ReferenceEval, but rank 0 saves each row to ``folder/<i>.npz`` (for DDP children)."""

    def __init__(self, folder: Any, x: torch.Tensor, y: torch.Tensor) -> None:
        self.folder, self.x, self.y, self.count = str(folder), x, y, 0

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            with torch.no_grad():
                logits = pl_module(self.x.to(pl_module.device))
            np.savez(f"{self.folder}/{self.count}.npz",
                     **reference_decisions(logits.float().cpu().numpy(), self.y.numpy()))
        self.count += 1


def load_file_reference(folder: Any) -> ReferenceEval:
    from pathlib import Path

    ref = ReferenceEval(torch.zeros(0), torch.zeros(0))
    files = sorted(Path(folder).glob("*.npz"), key=lambda p: int(p.stem))
    ref.rows = [dict(np.load(p)) for p in files]
    return ref
