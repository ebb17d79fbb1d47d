"""DecisionRecorder with real training on sklearn digits, checked against an independent evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import (
    BinaryModel,
    CallsSubmodule,
    DictBatchModel,
    DictDataset,
    ReferenceEval,
    ReturnDict,
    ReturnLogits,
    assert_store_matches,
    digits_loaders,
    trainer,
    val_tensors,
)
from torch.utils.data import DataLoader, TensorDataset

from lightning_ddd import DecisionRecorder, DecisionStore, WithIndex
from lightning_ddd.demo.models import DigitsClassifier
from lightning_ddd.store import RowFlag


def fit(tmp_path, model, rec, ref=None, train=None, val=None, **kw):
    if train is None:
        train, val = digits_loaders()
    cbs = [rec] + ([ref] if ref is not None else [])
    t = trainer(tmp_path, cbs, **kw)
    t.fit(model, train, val)
    return t


def test_rows_equal_independent_evaluation(tmp_path):
    x, y = val_tensors()
    rec, ref = DecisionRecorder(tmp_path / "ddd", run_name="r"), ReferenceEval(x, y)
    fit(tmp_path, DigitsClassifier(), rec, ref, max_epochs=3)
    path = tmp_path / "ddd" / "r.h5"
    assert_store_matches(path, ref)
    s = DecisionStore(path)
    rows = s.rows("val")
    np.testing.assert_array_equal(rows["epoch"], [0, 1, 2, 3])
    assert rows["flags"][0] == RowFlag.BEFORE_TRAINING and not rows["flags"][1:].any()
    assert (np.diff(rows["global_step"]) > 0).all() and rows["global_step"][0] == 0
    np.testing.assert_array_equal(s.targets("val"), y.numpy())
    # the untrained network differs from the trained one: rows are not copies
    assert (s.read("val", "pred")[0] != s.read("val", "pred")[-1]).any()


@pytest.mark.parametrize("model_cls,module", [(ReturnLogits, None), (ReturnDict, None), (CallsSubmodule, "net"),
                                              (CallsSubmodule, None)])
def test_capture_paths(tmp_path, model_cls, module):
    x, y = val_tensors()
    rec, ref = DecisionRecorder(tmp_path, run_name="r", module=module), ReferenceEval(x, y)
    fit(tmp_path, model_cls(), rec, ref)
    assert_store_matches(tmp_path / "r.h5", ref)


class NoLogitsAnywhere(DigitsClassifier):
    """validation_step computes a scalar and calls no module: nothing classifier-shaped."""

    def validation_step(self, batch, batch_idx):
        return (batch[0] ** 2).mean()


def test_no_logits_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="found no logits.*any submodule.*extract_batch"):
        fit(tmp_path, NoLogitsAnywhere(arch="mlp"), DecisionRecorder(tmp_path, run_name="r"))


def test_dict_batches_with_ids(tmp_path):
    x, y = val_tensors()
    xt, yt, _, _ = (torch.from_numpy(a) for a in __import__("lightning_ddd.demo.digits", fromlist=["x"])
                    .load_digits_arrays(0))
    train = DataLoader(DictDataset(xt, yt), batch_size=64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(3))
    val = DataLoader(DictDataset(x, y), batch_size=100, sampler=order.tolist())  # shuffled: ids needed
    rec, ref = DecisionRecorder(tmp_path, run_name="r"), ReferenceEval(x, y)
    fit(tmp_path, DictBatchModel(), rec, ref, train=train, val=val)
    assert_store_matches(tmp_path / "r.h5", ref)


def test_with_index_on_a_shuffled_loader(tmp_path):
    x, y = val_tensors()
    train, _ = digits_loaders()
    val = DataLoader(WithIndex(TensorDataset(x, y)), batch_size=100, shuffle=True)
    rec, ref = DecisionRecorder(tmp_path, run_name="r"), ReferenceEval(x, y)
    fit(tmp_path, DigitsClassifier(), rec, ref, train=train, val=val)
    assert_store_matches(tmp_path / "r.h5", ref)


class UnpacksTwo(DigitsClassifier):
    """The examples' own steps: ``x, y = batch`` (a WithIndex batch would break them)."""

    def validation_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_shuffled_loader_is_recorded_exactly_without_changing_the_batch(tmp_path, workers):
    x, y = val_tensors()
    train, _ = digits_loaders()
    val = DataLoader(TensorDataset(x, y), batch_size=100, shuffle=True, num_workers=workers,
                     persistent_workers=workers > 0)
    rec, ref = DecisionRecorder(tmp_path, run_name="r"), ReferenceEval(x, y)
    fit(tmp_path, UnpacksTwo(), rec, ref, train=train, val=val, max_epochs=3)
    assert_store_matches(tmp_path / "r.h5", ref)  # ids from the sampler's own draws, in batch order


def test_a_custom_batch_sampler_that_shuffles_names_with_index(tmp_path):
    x, y = val_tensors()
    train, _ = digits_loaders()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0)).tolist()
    batches = [order[i:i + 100] for i in range(0, len(order), 100)]
    val = DataLoader(TensorDataset(x, y), batch_sampler=batches)  # not torch's BatchSampler: cannot be watched
    with pytest.raises(ValueError, match="WithIndex.*changes the batch"):
        fit(tmp_path, DigitsClassifier(), DecisionRecorder(tmp_path, run_name="r"), train=train, val=val)


def test_a_third_element_that_is_not_an_id_is_not_taken_for_one(tmp_path):
    x, y = val_tensors()
    train, _ = digits_loaders()
    val = DataLoader(TensorDataset(x, y, torch.rand(len(y))), batch_size=100)  # sample weights, not ids
    rec, ref = DecisionRecorder(tmp_path, run_name="r"), ReferenceEval(x, y)
    fit(tmp_path, DigitsClassifier(), rec, ref, train=train, val=val)
    assert_store_matches(tmp_path / "r.h5", ref)  # ids from the sequential sampler, provably right
    shuffled = DataLoader(TensorDataset(x, y, torch.rand(len(y))), batch_size=100, shuffle=True)
    ref = ReferenceEval(x, y)
    fit(tmp_path / "b", DigitsClassifier(), DecisionRecorder(tmp_path / "b", run_name="r"), ref, train=train,
        val=shuffled)
    assert_store_matches(tmp_path / "b" / "r.h5", ref)  # ids from the shuffling sampler's own draws


def test_bf16_mixed_is_upcast(tmp_path):
    x, y = val_tensors()
    rec, ref = DecisionRecorder(tmp_path, run_name="r"), ReferenceEval(x, y, autocast=True)
    fit(tmp_path, DigitsClassifier(), rec, ref, precision="bf16-mixed")
    assert_store_matches(tmp_path / "r.h5", ref, atol=1e-4)
    s = DecisionStore(tmp_path / "r.h5")
    assert s.read("val", "loss").dtype == np.float32


@pytest.mark.parametrize("squeeze", [True, False])
def test_binary_outputs(tmp_path, squeeze):
    x, y = val_tensors()
    yb = (y >= 5).long()
    xt, yt, _, _ = __import__("lightning_ddd.demo.digits", fromlist=["x"]).load_digits_arrays(0)
    train = DataLoader(TensorDataset(torch.from_numpy(xt), torch.from_numpy((yt >= 5).astype(np.int64))),
                       batch_size=64)
    val = DataLoader(TensorDataset(x, yb), batch_size=100)
    rec, ref = DecisionRecorder(tmp_path, run_name="r"), ReferenceEval(x, yb)
    fit(tmp_path, BinaryModel(squeeze), rec, ref, train=train, val=val)
    assert_store_matches(tmp_path / "r.h5", ref)
    s = DecisionStore(tmp_path / "r.h5")
    assert s.info("val").num_classes == 2
    prob = s.read("val", "prob")
    assert ((prob > 0.5) == s.read("val", "correct")).mean() > 0.99


def test_float16_and_fields_off(tmp_path):
    x, y = val_tensors()
    ref = ReferenceEval(x, y)
    fit(tmp_path, DigitsClassifier(), DecisionRecorder(tmp_path, run_name="h", precision="float16"), ref)
    s = DecisionStore(tmp_path / "h.h5")
    loss = s.read("val", "loss")
    assert loss.dtype == np.float16
    for r, want in enumerate(ref.rows):
        np.testing.assert_allclose(loss[r].astype(np.float64), want["loss"], rtol=2**-10, atol=1e-6)
    fit(tmp_path, DigitsClassifier(), DecisionRecorder(tmp_path, run_name="off", record_loss=False,
                                                       record_margin=False))
    s = DecisionStore(tmp_path / "off.h5")
    assert set(s.info("val").fields) == {"correct", "evaluated", "pred"}
    with pytest.raises(KeyError, match="not recorded"):
        s.read("val", "loss")


def test_unexpected_shape_names_shape_and_override(tmp_path):
    class Weird(DigitsClassifier):
        def validation_step(self, batch, batch_idx):
            return {"logits": self(batch[0])[:, :, None].expand(-1, -1, 2)}

    with pytest.raises(ValueError, match=r"shape \(100, 10, 2\).*extract_batch"):
        fit(tmp_path, Weird(), DecisionRecorder(tmp_path, run_name="r"))


def test_mid_epoch_and_gaps(tmp_path):
    fit(tmp_path, DigitsClassifier(), DecisionRecorder(tmp_path, run_name="mid"), val_check_interval=0.5,
        max_epochs=2)
    rows = DecisionStore(tmp_path / "mid.h5").rows("val")
    n_batches = 16  # 988 training samples / 64
    np.testing.assert_allclose(rows["epoch"], [0, 8 / n_batches, 1, 1 + 8 / n_batches, 2])
    assert [bool(f & RowFlag.MID_EPOCH) for f in rows["flags"]] == [False, True, False, True, False]
    fit(tmp_path, DigitsClassifier(), DecisionRecorder(tmp_path, run_name="gap"), check_val_every_n_epoch=2,
        max_epochs=4)
    np.testing.assert_array_equal(DecisionStore(tmp_path / "gap.h5").rows("val")["epoch"], [0, 2, 4])


def test_partial_sanity_check_is_not_recorded_and_validate_after_fit_is_not_appended(tmp_path):
    rec = DecisionRecorder(tmp_path, run_name="r")
    with pytest.warns(UserWarning, match="epoch 0"):
        t = fit(tmp_path, DigitsClassifier(), rec, num_sanity_val_steps=2)
    train, val = digits_loaders()
    t.validate(t.lightning_module, val, verbose=False)
    rows = DecisionStore(tmp_path / "r.h5").rows("val")
    np.testing.assert_array_equal(rows["epoch"], [1, 2])


def test_multiple_dataloaders_are_splits(tmp_path):
    x, y = val_tensors()
    train, val = digits_loaders()
    small = DataLoader(TensorDataset(x[:50], y[:50]), batch_size=20)
    rec = DecisionRecorder(tmp_path, run_name="r", splits=["full", "small"])
    fit(tmp_path, ReturnLogitsMulti(), rec, train=train, val=[val, small])
    s = DecisionStore(tmp_path / "r.h5")
    assert s.splits == ["full", "small"] and s.info("small").num_samples == 50
    np.testing.assert_array_equal(s.read("small", "pred"), s.read("full", "pred")[:, :50])


class ReturnLogitsMulti(DigitsClassifier):
    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        return self(batch[0])


def test_limit_val_batches_reads_missing_not_wrong(tmp_path):
    fit(tmp_path, DigitsClassifier(), DecisionRecorder(tmp_path, run_name="r"), limit_val_batches=3)
    s = DecisionStore(tmp_path / "r.h5")
    ev = s.read("val", "evaluated")
    assert ev[:, :300].all() and not ev[:, 300:].any()
    assert (s.read("val", "pred")[:, 300:] == -1).all()
