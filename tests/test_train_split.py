"""Training-split recording: per presentation, in train mode, checked against an independent computation."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import reference_decisions, trainer
from torch.utils.data import DataLoader, TensorDataset

from lightning_ddd import DecisionRecorder, DecisionStore, WithIndex
from lightning_ddd.analysis import summarize_dynamics
from lightning_ddd.demo.digits import load_digits_arrays
from lightning_ddd.demo.models import DigitsClassifier


class ReturnsLogits(DigitsClassifier):
    """training_step returns the logits too, so the reference sees exactly what was presented."""

    def __init__(self) -> None:
        super().__init__(arch="mlp")
        self.drop = torch.nn.Dropout(0.2)  # train mode matters: dropout is active for these decisions

    def forward(self, x):
        return self.net[2:](self.drop(self.net[:2](x)))

    def training_step(self, batch, batch_idx):
        logits = self(batch[0])
        return {"loss": F.cross_entropy(logits, batch[1]), "logits": logits.detach()}


class PresentationReference(pl.Callback):
    """Per presentation: ids from a lookup of the images themselves, decisions from the returned logits."""

    def __init__(self, x: np.ndarray, folder: Path) -> None:
        self.lookup = {row.tobytes(): i for i, row in enumerate(x.reshape(len(x), -1))}
        assert len(self.lookup) == len(x)
        self.folder = folder
        self.epoch: list = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        xb = batch[0].reshape(len(batch[0]), -1).numpy()
        ids = np.array([self.lookup[r.tobytes()] for r in xb])
        ref = reference_decisions(outputs["logits"].float().numpy(), batch[1].numpy())
        self.epoch.append({"ids": ids, **ref})

    def on_train_epoch_end(self, trainer, pl_module):
        ids = np.concatenate([b["ids"] for b in self.epoch])
        data = {k: np.concatenate([b[k] for b in self.epoch]) for k in ("pred", "correct", "loss", "margin")}
        np.savez(self.folder / f"r{trainer.global_rank}_e{trainer.current_epoch}.npz", ids=ids, **data)
        self.epoch = []


def merged_reference(folder: Path, epoch: int, n: int) -> dict[str, np.ndarray]:
    count = np.zeros(n, int)
    last: dict[str, np.ndarray] = {k: np.full(n, np.nan) for k in ("pred", "correct", "loss", "margin")}
    for f in sorted(folder.glob(f"r*_e{epoch}.npz")):
        d = np.load(f)
        np.add.at(count, d["ids"], 1)
        for k in last:
            last[k][d["ids"]] = d[k]  # last presentation (within a rank: batch order)
    return {"count": count, **last}


@pytest.mark.parametrize("mode", ["with_index", "ddp_spawn"])
def test_train_split_equals_per_presentation_reference(tmp_path, mode):
    x, y, _, _ = load_digits_arrays(0, pixel_noise=0.3)  # noise makes every image unique
    ds = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    (tmp_path / "ref").mkdir()
    rec = DecisionRecorder(tmp_path, run_name="tr", record_train=True)
    ref = PresentationReference(x, tmp_path / "ref")
    if mode == "with_index":
        train = DataLoader(WithIndex(ds), batch_size=64, shuffle=True)
        kw = {}
    else:  # Lightning injects a shuffling DistributedSampler: ids are reconstructed from it
        train = DataLoader(ds, batch_size=64, shuffle=True)
        kw = {"strategy": "ddp_spawn", "devices": 2}
    _, _, xv, yv = load_digits_arrays(0, pixel_noise=0.3)
    val = DataLoader(TensorDataset(torch.from_numpy(xv), torch.from_numpy(yv)), batch_size=200)
    pl.seed_everything(1)
    trainer(tmp_path, [rec, ref], max_epochs=2, **kw).fit(ReturnsLogits(), train, val)
    s = DecisionStore(tmp_path / "tr.h5")
    info = s.info("train")
    assert info.kind == "train" and info.num_samples == len(y) and "presentations" in info.fields
    rows = s.rows("train")
    np.testing.assert_array_equal(rows["epoch"], [1, 2])
    assert (rows["flags"] & 4).all()
    for e in range(2):
        want = merged_reference(tmp_path / "ref", e, len(y))
        pres = s.read("train", "presentations")[e]
        np.testing.assert_array_equal(pres, want["count"])
        once = want["count"] == 1  # duplicates (DistributedSampler padding) keep some presentation
        assert once.sum() > 0.9 * len(y)
        np.testing.assert_array_equal(s.read("train", "pred")[e][once], want["pred"][once])
        np.testing.assert_array_equal(s.read("train", "correct")[e][once], want["correct"][once].astype(bool))
        np.testing.assert_allclose(s.read("train", "loss")[e][once], want["loss"][once], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(s.read("train", "margin")[e][once], want["margin"][once], rtol=1e-5, atol=1e-5)
        assert s.read("train", "evaluated")[e].sum() == (want["count"] > 0).sum()
    d = summarize_dynamics(s.read("train", "correct"), s.read("train", "evaluated"), burn_in=0)
    c, ev = s.read("train", "correct"), s.read("train", "evaluated")
    assert d.forgetting_events.sum() == np.sum(c[0] & ~c[1] & ev[0] & ev[1])
    if mode == "with_index":  # forgetting events from the training split, through the analysis and the report
        from lightning_ddd.analysis import stream_dynamics
        from lightning_ddd.cli import main

        np.testing.assert_array_equal(stream_dynamics(tmp_path / "tr.h5", "train").forgetting_events,
                                      d.forgetting_events)
        assert main(["report", str(tmp_path / "tr.h5"), "--split", "train", "--out", str(tmp_path / "rep"),
                     "--quiet"]) == 0
        table = (tmp_path / "rep" / "samples.csv").read_text().splitlines()
        col = table[0].split(",").index("observed_forgetting_events")
        assert sum(int(r.split(",")[col]) for r in table[1:]) == d.forgetting_events.sum()


def test_a_shuffled_train_loader_without_ids_equals_one_with_ids(tmp_path):
    """The training split's ids come from the shuffling sampler's own draws: the store equals that of the same
    seeded run whose batches carry their ids (WithIndex)."""
    x, y, xv, yv = load_digits_arrays(0)
    ds = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    val = DataLoader(TensorDataset(torch.from_numpy(xv), torch.from_numpy(yv)), batch_size=200)
    stores = {}
    for name, data in (("plain", ds), ("indexed", WithIndex(ds))):
        torch.manual_seed(5)
        train = DataLoader(data, batch_size=64, shuffle=True)
        trainer(tmp_path, [DecisionRecorder(tmp_path, run_name=name, record_train=True)], max_epochs=2).fit(
            DigitsClassifier(), train, val)
        stores[name] = DecisionStore(tmp_path / f"{name}.h5")
    for field in ("evaluated", "correct", "pred", "loss", "presentations"):
        np.testing.assert_array_equal(stores["plain"].read("train", field), stores["indexed"].read("train", field))
    assert stores["plain"].read("train", "presentations").all()


def test_a_sampler_with_replacement_warns_once_and_the_row_keeps_the_last_presentation(tmp_path):
    """Several presentations of an id in one epoch (WeightedRandomSampler, RandomSampler(replacement=True)):
    one warning naming the rule; the store counts every presentation; a sampler without replacement is silent."""
    import warnings

    from torch.utils.data import RandomSampler

    x, y, xv, yv = load_digits_arrays(0)
    ds = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    val = DataLoader(TensorDataset(torch.from_numpy(xv), torch.from_numpy(yv)), batch_size=200)
    for name, replacement in (("with", True), ("without", False)):
        torch.manual_seed(3)
        sampler = RandomSampler(ds, replacement=replacement, generator=torch.Generator().manual_seed(7))
        train = DataLoader(ds, batch_size=64, sampler=sampler)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer(tmp_path, [DecisionRecorder(tmp_path, run_name=name, record_train=True)], max_epochs=2).fit(
                DigitsClassifier(), train, val)
        said = [str(w.message) for w in caught if "more than once" in str(w.message)]
        presentations = DecisionStore(tmp_path / f"{name}.h5").read("train", "presentations")
        if replacement:
            assert len(said) == 1 and "keeps the last presentation" in said[0]
            drawn = torch.Generator().manual_seed(7)  # the sampler's own draws of epoch 1, independently
            first = torch.randint(high=len(ds), size=(len(ds),), dtype=torch.int64, generator=drawn).numpy()
            np.testing.assert_array_equal(presentations[0], np.bincount(first, minlength=len(ds)))
        else:
            assert said == [] and (presentations == 1).all()
