"""Training code written the way users write it (issue 12): every recorded row equals an independent
evaluation of the same weights, or the recorder refuses clearly before writing anything."""

from __future__ import annotations

import hashlib
import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import ReferenceEval, assert_store_matches, digits_loaders, reference_decisions, trainer, val_tensors
from torch.utils.data import BatchSampler, DataLoader, IterableDataset, SequentialSampler, TensorDataset

from lightning_ddd import DecisionRecorder, DecisionStore, WithIndex
from lightning_ddd.demo.models import DigitsClassifier
from lightning_ddd.store import RowFlag


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Full(DigitsClassifier):
    """A module with test and predict steps too."""

    def test_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def predict_step(self, batch, batch_idx):
        return self(batch[0]).argmax(1)


# ------------------------------------------------------------------ 12.1 other entry points never change fit's rows
def test_validate_test_predict_never_change_what_fit_recorded(tmp_path):
    train, val = digits_loaders()
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    rec = DecisionRecorder(tmp_path / "ddd", run_name="run")
    t = trainer(tmp_path, [rec, ckpt], max_epochs=3, enable_checkpointing=True)
    t.fit(Full(lr=0.05), train, val)
    path = rec.store_path
    before = _digest(path)
    first = sorted((tmp_path / "ckpt").glob("*.ckpt"))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.validate(t.lightning_module, val, ckpt_path=str(first), verbose=False)
        t.test(t.lightning_module, val, ckpt_path=str(first), verbose=False)
        t.predict(t.lightning_module, val, ckpt_path=str(first))
        t.validate(t.lightning_module, val, verbose=False)
        # a new Trainer with a new recorder writing to the same place
        rec2 = DecisionRecorder(tmp_path / "ddd", run_name="run")
        t2 = trainer(tmp_path, [rec2], enable_checkpointing=True)
        t2.validate(Full(), val, ckpt_path=str(first), verbose=False)
        t2.test(Full(), val, ckpt_path=str(first), verbose=False)
    assert _digest(path) == before
    assert DecisionStore(path).info("val").num_rows == 4


def test_validate_alone_records_only_the_untrained_network_flagged_as_such(tmp_path):
    train, val = digits_loaders()
    x, y = val_tensors()
    ref = ReferenceEval(x, y)
    rec = DecisionRecorder(tmp_path / "ddd", run_name="v")
    t = trainer(tmp_path, [rec, ref], num_sanity_val_steps=0)
    t.validate(Full(), val, verbose=False)
    s = DecisionStore(rec.store_path)
    flags = s.rows("val")["flags"]
    assert flags.tolist() == [RowFlag.BEFORE_TRAINING | RowFlag.VALIDATE_CALL]
    assert_store_matches(rec.store_path, ref)


# ------------------------------------------------------------------ 12.2 never a silently wrong row
class TTA(DigitsClassifier):
    """Test-time augmentation: two forward calls per step; the decision is the mean of both."""

    def __init__(self, return_logits: bool, **kw):
        super().__init__(**kw)
        self.return_logits = return_logits

    def decide(self, x):
        return (self(x) + self(torch.flip(x, dims=[-1]))) / 2

    def validation_step(self, batch, batch_idx):
        z = self.decide(batch[0])
        return z if self.return_logits else None


class TTAReference(ReferenceEval):
    def on_validation_epoch_end(self, trainer, pl_module):
        with torch.no_grad():
            self.rows.append(reference_decisions(pl_module.decide(self.x).numpy(), self.y.numpy()))


def test_several_forward_calls_record_the_returned_logits_or_warn_with_the_count(tmp_path):
    train, val = digits_loaders()
    x, y = val_tensors()
    ref = TTAReference(x, y)
    rec = DecisionRecorder(tmp_path / "a", run_name="r")
    trainer(tmp_path, [rec, ref], max_epochs=2).fit(TTA(True, lr=0.05), train, val)
    assert_store_matches(rec.store_path, ref)
    rec = DecisionRecorder(tmp_path / "b", run_name="r")
    with pytest.warns(UserWarning, match="called 2 times in one validation step"):
        trainer(tmp_path, [rec], max_epochs=1).fit(TTA(False, lr=0.05), train, val)


class Softmaxed(DigitsClassifier):
    def forward(self, x):
        return torch.softmax(self.net(x), dim=1)

    def training_step(self, batch, batch_idx):
        return F.nll_loss(torch.log(self(batch[0]) + 1e-12), batch[1])

    def validation_step(self, batch, batch_idx):
        self(batch[0])


class Sigmoided(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1))

    def forward(self, x):
        return torch.sigmoid(self.net(x)).squeeze(1)

    def training_step(self, batch, batch_idx):
        return F.binary_cross_entropy(self(batch[0]), batch[1].float())

    def validation_step(self, batch, batch_idx):
        self(batch[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


class ProbReference(ReferenceEval):
    def on_validation_epoch_end(self, trainer, pl_module):
        with torch.no_grad():
            p = pl_module(self.x).double().numpy()
        y = self.y.numpy()
        if p.ndim == 1:
            pred = (p > 0.5).astype(int)
            pt = np.where(y == 1, p, 1 - p)
            po = 1 - pt
        else:
            pred = p.argmax(1)
            pt = p[np.arange(len(y)), y]
            other = p.copy()
            other[np.arange(len(y)), y] = -np.inf
            po = other.max(1)
        self.rows.append({"pred": pred, "correct": pred == y, "loss": -np.log(pt), "margin": np.log(pt) - np.log(po)})


@pytest.mark.parametrize("binary", [False, True])
def test_probability_outputs_are_detected_and_recorded_as_the_models_decision(tmp_path, binary):
    x, y = val_tensors()
    if binary:
        y = (y >= 5).long()
    train_y = y if binary else None
    train, _ = digits_loaders()
    if binary:
        xt = torch.cat([b[0] for b in train])
        yt = (torch.cat([b[1] for b in train]) >= 5).long()
        train = DataLoader(TensorDataset(xt, yt), batch_size=64)
    val = DataLoader(TensorDataset(x, y), batch_size=100)
    ref = ProbReference(x, y)
    rec = DecisionRecorder(tmp_path, run_name="p")
    model = Sigmoided() if binary else Softmaxed(lr=0.1)
    with pytest.warns(UserWarning, match="look like probabilities"):
        trainer(tmp_path, [rec, ref], max_epochs=2).fit(model, train, val)
    assert_store_matches(rec.store_path, ref, atol=1e-4)
    assert all(int(f) & RowFlag.PROBABILITIES for f in DecisionStore(rec.store_path).rows("val")["flags"])
    del train_y


class ShufflingBatchSampler(BatchSampler):
    """A custom batch sampler that reorders batches (e.g. bucketing by length)."""

    def __iter__(self):
        batches = list(super().__iter__())
        order = torch.randperm(len(batches)).tolist()
        return iter([batches[i] for i in order])


class Stream(IterableDataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        return iter(zip(self.x, self.y))

    def __len__(self):
        return len(self.y)


def test_unprovable_ids_are_refused_before_any_row(tmp_path):
    x, y = val_tensors()
    train, _ = digits_loaders()
    ds = TensorDataset(x, y)
    custom = DataLoader(ds, batch_sampler=ShufflingBatchSampler(SequentialSampler(ds), 100, False))
    with pytest.raises(ValueError, match="is not torch's BatchSampler") as info:
        trainer(tmp_path, [DecisionRecorder(tmp_path / "a", run_name="r")]).fit(DigitsClassifier(), train, custom)
    assert "WithIndex" in str(info.value)
    assert not (tmp_path / "a" / "r.h5").exists()
    stream = DataLoader(Stream(x, y), batch_size=100)
    with pytest.raises(ValueError, match="IterableDataset") as info:
        trainer(tmp_path, [DecisionRecorder(tmp_path / "b", run_name="r")]).fit(DigitsClassifier(), train, stream)
    assert "WithIndex" not in str(info.value)
    assert not (tmp_path / "b" / "r.h5").exists()


# ------------------------------------------------------------------ 12.3 refusals whose advice works
class WithFeatures(DigitsClassifier):
    def forward(self, x):
        return self.net(x), x.flatten(1)  # (logits, features)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0])[0], batch[1])

    def validation_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0])[0], batch[1])


class FeatureReference(ReferenceEval):
    def on_validation_epoch_end(self, trainer, pl_module):
        with torch.no_grad():
            self.rows.append(reference_decisions(pl_module(self.x)[0].numpy(), self.y.numpy()))


class OneHot(DigitsClassifier):
    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1].argmax(1))

    def validation_step(self, batch, batch_idx):
        self(batch[0])


class Weighted(DigitsClassifier):
    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        x, y, w = batch[0], batch[1], batch[2]
        return (F.cross_entropy(self(x), y, reduction="none") * w).mean()


def test_tuple_outputs_one_hot_targets_and_withindex_ids(tmp_path):
    train, val = digits_loaders()
    x, y = val_tensors()
    ref = FeatureReference(x, y)
    rec = DecisionRecorder(tmp_path / "a", run_name="r")
    trainer(tmp_path, [rec, ref], max_epochs=2).fit(WithFeatures(lr=0.05), train, val)
    assert_store_matches(rec.store_path, ref)

    onehot = DataLoader(TensorDataset(x, F.one_hot(y, 10).float()), batch_size=100)
    xt = torch.cat([b[0] for b in train])
    yt = torch.cat([b[1] for b in train])
    train_oh = DataLoader(TensorDataset(xt, F.one_hot(yt, 10).float()), batch_size=64)
    ref = ReferenceEval(x, y)
    rec = DecisionRecorder(tmp_path / "b", run_name="r")
    trainer(tmp_path, [rec, ref], max_epochs=2).fit(OneHot(lr=0.05), train_oh, onehot)
    assert_store_matches(rec.store_path, ref)
    np.testing.assert_array_equal(DecisionStore(rec.store_path).targets("val"), y.numpy())

    weights = torch.rand(len(y))
    shuffled = DataLoader(WithIndex(TensorDataset(x, y, weights)), batch_size=100, shuffle=True)
    ref = ReferenceEval(x, y)
    rec = DecisionRecorder(tmp_path / "c", run_name="r")
    trainer(tmp_path, [rec, ref], max_epochs=2).fit(Weighted(lr=0.05), train, shuffled)
    assert_store_matches(rec.store_path, ref)  # ids from WithIndex, not the weights in third place


# ------------------------------------------------------------------ 12.4 set-ups that crashed
def test_two_recorders_in_one_trainer(tmp_path):
    train, val = digits_loaders()
    x, y = val_tensors()
    ref = ReferenceEval(x, y)
    a = DecisionRecorder(tmp_path / "a", run_name="r")
    b = DecisionRecorder(tmp_path / "b", run_name="r", record_loss=False)
    trainer(tmp_path, [a, b, ref], max_epochs=2).fit(DigitsClassifier(lr=0.05), train, val)
    assert_store_matches(a.store_path, ref)
    s = DecisionStore(b.store_path)
    for r, want in enumerate(ref.rows):
        np.testing.assert_array_equal(s.read("val", "correct")[r], want["correct"])


def test_validating_inside_an_accumulation_window_gives_distinct_ordered_rows(tmp_path):
    train, val = digits_loaders()
    x, y = val_tensors()
    ref = ReferenceEval(x, y)
    rec = DecisionRecorder(tmp_path, run_name="r")
    trainer(tmp_path, [rec, ref], max_epochs=1, accumulate_grad_batches=4, val_check_interval=2).fit(
        DigitsClassifier(lr=0.05), train, val)
    rows = DecisionStore(rec.store_path).rows("val")
    keys = list(zip(rows["global_step"].tolist(), rows["epoch"].tolist()))
    assert keys == sorted(set(keys)) and len(keys) == len(ref.rows) > 3
    assert_store_matches(rec.store_path, ref)


def test_a_recorder_reused_by_a_second_trainer_appends_after_its_rows(tmp_path):
    train, val = digits_loaders()
    x, y = val_tensors()
    ref = ReferenceEval(x, y)
    rec = DecisionRecorder(tmp_path, run_name="r")
    model = DigitsClassifier(lr=0.05)
    trainer(tmp_path, [rec, ref], max_epochs=2).fit(model, train, val)
    trainer(tmp_path, [rec, ref], max_epochs=2).fit(model, train, val)  # a second stage on a new Trainer
    rows = DecisionStore(rec.store_path).rows("val")
    assert rows["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert (np.diff(rows["global_step"]) > 0).all()
    assert len(ref.rows) == 6  # the second stage's sanity check is evaluated by the reference, not recorded
    assert_store_matches(rec.store_path, ref, rows=[0, 1, 2, 4, 5])


class FailsInFirstEpoch(DigitsClassifier):
    def training_step(self, batch, batch_idx):
        raise RuntimeError("out of memory, say")


def test_a_first_epoch_that_fails_leaves_nothing_that_blocks_the_rerun(tmp_path):
    train, val = digits_loaders()
    with pytest.raises(RuntimeError, match="out of memory"):
        trainer(tmp_path, [DecisionRecorder(tmp_path, run_name="r")], max_epochs=1).fit(FailsInFirstEpoch(), train,
                                                                                         val)
    assert not (tmp_path / "r.h5").exists()
    x, y = val_tensors()
    ref = ReferenceEval(x, y)
    rec = DecisionRecorder(tmp_path, run_name="r")
    trainer(tmp_path, [rec, ref], max_epochs=1).fit(DigitsClassifier(lr=0.05), train, val)
    assert_store_matches(rec.store_path, ref)


def test_two_class_softmax_is_never_mistaken_for_a_single_sigmoid_output():
    import torch as t

    from lightning_ddd.capture.decisions import compute_decisions, decisions_from_probabilities

    targets = t.tensor([0, 1, 1])
    two = compute_decisions(t.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]), targets)  # certain softmax rows
    fixed = decisions_from_probabilities(two.out_target.numpy(), two.out_other.numpy(), targets.numpy(), 2)
    assert fixed["pred"] is None  # the argmax stands; p(target) = 1 everywhere, not "p > 0.5 of class 1"
    one = compute_decisions(t.tensor([0.9, 0.2, 0.7]), targets)  # one sigmoid output
    fixed = decisions_from_probabilities(one.out_target.numpy(), one.out_other.numpy(), targets.numpy(), 2)
    np.testing.assert_array_equal(fixed["pred"], [1, 0, 1])
    np.testing.assert_allclose(fixed["loss"], -np.log([0.1, 0.2, 0.7]), rtol=1e-6)
