"""Bad input to the recorder: a clear error or warning, and nothing already recorded is lost."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from helpers import digits_loaders, trainer, val_tensors
from torch.utils.data import DataLoader, Dataset

from lightning_ddd import DecisionRecorder, DecisionStore
from lightning_ddd.demo.models import DigitsClassifier
from lightning_ddd.store import StoreLockedError


class Switchable(Dataset):
    """Validation data that turns bad after epoch 1: ids or targets change."""

    def __init__(self, mode: str) -> None:
        self.x, self.y = val_tensors()
        self.mode, self.bad = mode, False

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        y = int(self.y[i])
        idx = i
        if self.bad and self.mode == "target" and i in (3, 7):
            y = 10 + i
        if self.bad and self.mode == "id" and i == 5:
            idx = len(self.y) + 41
        if self.bad and self.mode == "dup":
            idx = i % 100
        return self.x[i], y, idx


class HookOnly(DigitsClassifier):
    """validation_step returns nothing and never looks at targets."""

    def validation_step(self, batch, batch_idx):
        self(batch[0])


class TurnBad(pl.Callback):
    def __init__(self, ds: Switchable) -> None:
        self.ds = ds

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            self.ds.bad = True


@pytest.mark.parametrize("mode,match", [
    ("target", r"targets of ids \[3, 7\] lie outside \[0, 10\)"),
    ("id", r"ids \[850\] lie outside \[0, 809\)"),
    ("dup", r"ids \[0, 1, 2.*more than once.*different"),
])
def test_bad_epoch_writes_nothing_and_keeps_earlier_rows(tmp_path, mode, match):
    ds = Switchable(mode)
    train, _ = digits_loaders()
    val = DataLoader(ds, batch_size=100)
    t = trainer(tmp_path, [DecisionRecorder(tmp_path, run_name="r"), TurnBad(ds)], max_epochs=3)
    with pytest.raises(ValueError, match=match):
        t.fit(HookOnly(), train, val)
    s = DecisionStore(tmp_path / "r.h5")
    np.testing.assert_array_equal(s.rows("val")["epoch"], [0, 1, 2])
    assert s.read("val", "evaluated").all()


class NanFor(DigitsClassifier):
    def forward(self, x):
        z = super().forward(x)
        bad = (x.flatten(1).sum(1) < 0) | (torch.arange(len(x)) == 3)
        return torch.where(bad[:, None], torch.full_like(z, float("nan")), z)


def test_nonfinite_logits_are_wrong_with_a_warning(tmp_path):
    train, val = digits_loaders()
    t = trainer(tmp_path, [DecisionRecorder(tmp_path, run_name="r")], max_epochs=1)
    with pytest.warns(UserWarning, match=r"NaN or infinite logits for 9 samples \(ids \[3, 103, 203"):
        t.fit(NanFor(), train, val)
    s = DecisionStore(tmp_path / "r.h5")
    correct = s.read("val", "correct")
    assert not correct[:, 3::100].any()
    assert s.rows("val")["flags"][0] & 8


def test_unwritable_path_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    train, val = digits_loaders()
    t = trainer(tmp_path, [DecisionRecorder(blocker / "sub", run_name="r")])
    with pytest.raises(Exception, match="Cannot create|not writable|Not a directory"):
        t.fit(DigitsClassifier(), train, val)
    assert t.global_step == 0


def test_two_recorders_one_file_fail_before_training(tmp_path):
    train, val = digits_loaders()
    recorders = [DecisionRecorder(tmp_path, run_name="same"), DecisionRecorder(tmp_path, run_name="same", splits=["v"])]
    t = trainer(tmp_path, recorders)
    with pytest.raises(StoreLockedError, match="Two DecisionRecorders"):
        t.fit(DigitsClassifier(), train, val)
    assert t.global_step == 0


def test_existing_store_is_never_overwritten_silently(tmp_path):
    train, val = digits_loaders()
    trainer(tmp_path, [DecisionRecorder(tmp_path, run_name="r")], max_epochs=1).fit(DigitsClassifier(), train, val)
    before = (tmp_path / "r.h5").read_bytes()
    with pytest.raises(FileExistsError, match="already exists.*ckpt_path.*overwrite=True"):
        trainer(tmp_path, [DecisionRecorder(tmp_path, run_name="r")]).fit(DigitsClassifier(), train, val)
    assert (tmp_path / "r.h5").read_bytes() == before
    trainer(tmp_path, [DecisionRecorder(tmp_path, run_name="r", overwrite=True)], max_epochs=2).fit(
        DigitsClassifier(), train, val)
    assert DecisionStore(tmp_path / "r.h5").info("val").num_rows == 3


def test_store_of_another_dataset_is_refused(tmp_path):
    from lightning_ddd.store import Row, RowFlag, StoreMismatchError, StoreWriter

    w = StoreWriter(tmp_path / "s.h5", run_name="s", run_id="1")
    w.open()
    n = 5
    row = Row("val", 0, 0.0, RowFlag.NONE, 3, np.ones(n, bool), np.ones(n, bool), np.zeros(n, int), np.zeros(n, int))
    w.append(row)
    bigger = Row("val", 1, 1.0, RowFlag.NONE, 3, np.ones(6, bool), np.ones(6, bool), np.zeros(6, int), np.zeros(6, int))
    with pytest.raises(StoreMismatchError, match="holds 5 samples.*6"):
        w.append(bigger)
    other = Row("val", 2, 1.0, RowFlag.NONE, 3, np.ones(n, bool), np.ones(n, bool), np.zeros(n, int),
                np.array([0, 1, 0, 0, 2]))
    with pytest.raises(StoreMismatchError, match=r"2 samples \(ids \[1, 4\]\)"):
        w.append(other)
    back = Row("val", 0, 0.0, RowFlag.NONE, 3, np.ones(n, bool), np.ones(n, bool), np.zeros(n, int), np.zeros(n, int))
    with pytest.raises(StoreMismatchError, match="does not come after"):  # the same step and epoch again
        w.append(back)
    from lightning_ddd import DecisionStore as S

    assert S(tmp_path / "s.h5").info("val").num_rows == 1


@pytest.mark.parametrize("kwargs,match", [
    ({"precision": "bf16"}, "precision"), ({"splits": ["a", "a"]}, "distinct"), ({"locking": "maybe"}, "locking"),
    ({"flip_threshold": 0}, "flip_threshold"), ({"pending_timeout": -1}, "pending_timeout"),
    ({"outputs": "logit"}, "outputs"), ({"class_names": "cat"}, "class_names"),
])
def test_bad_configuration_fails_in_init(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DecisionRecorder("ddd", **kwargs)


class NoOutputs(DigitsClassifier):
    """validation_step neither calls a module nor returns anything: the recorder must refuse."""

    def validation_step(self, batch, batch_idx):
        return None


def test_a_recorder_refused_before_its_first_row_leaves_nothing_behind(tmp_path):
    train, val = digits_loaders()
    folder = tmp_path / "runs" / "ddd"
    with pytest.raises(ValueError, match="no logits"):
        trainer(tmp_path, [DecisionRecorder(folder, run_name="r")]).fit(NoOutputs(), train, val)
    assert not (tmp_path / "runs").exists()  # it created runs/ddd/: both are gone again
    mine = tmp_path / "mine"
    (mine / "ddd").mkdir(parents=True)  # a folder the user made stays
    with pytest.raises(ValueError, match="no logits"):
        trainer(tmp_path, [DecisionRecorder(mine / "ddd", run_name="r")]).fit(NoOutputs(), train, val)
    assert (mine / "ddd").is_dir() and not list((mine / "ddd").iterdir())


def test_with_index_refuses_an_iterable_dataset_in_one_line():
    from torch.utils.data import IterableDataset

    from lightning_ddd import WithIndex

    class Stream(IterableDataset):
        def __iter__(self):
            yield from range(3)

    with pytest.raises(TypeError, match="IterableDataset Stream.*no index.*'index'"):
        WithIndex(Stream())


def test_one_way_to_configure_flat_arguments_are_deprecated_and_never_silently_lose():
    from lightning_ddd import ThumbnailOptions, WandbOptions

    rec = DecisionRecorder("ddd", wandb=WandbOptions(table_rows=7), thumbnails=ThumbnailOptions(size=16))
    assert rec.wandb.table_rows == 7 and rec.thumbnails.size == 16
    with pytest.warns(FutureWarning, match=r"\['thumbnail_size', 'wandb_table_rows'\] are deprecated.*"
                                           r"WandbOptions\(table_rows=\.\.\.\).*ThumbnailOptions\(size=\.\.\.\)"):
        old = DecisionRecorder("ddd", wandb_table_rows=7, thumbnail_size=16)
    assert old.wandb == rec.wandb and old.thumbnails == rec.thumbnails  # the same configuration
    with pytest.raises(ValueError, match="either wandb=WandbOptions.*not both"):
        DecisionRecorder("ddd", wandb=WandbOptions(table_rows=7), wandb_table_rows=9)
    with pytest.raises(ValueError, match="either thumbnails=ThumbnailOptions.*not both"):
        DecisionRecorder("ddd", thumbnails=ThumbnailOptions(size=16), thumbnail_size=32)
