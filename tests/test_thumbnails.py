"""Thumbnails in the store (issue 14.1): made on the device, equal to an independent numpy downsampling of the
dataset's images, bounded by a cap, switched off on request, with class names beside them."""

from __future__ import annotations

import warnings

import h5py
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import digits_loaders, trainer
from torch.utils.data import DataLoader, Dataset, Subset

from lightning_ddd import DecisionRecorder, DecisionStore, WithIndex
from lightning_ddd.capture.thumbnails import ThumbnailOptions, size_for_budget, thumbnail_shape
from lightning_ddd.store import StoreFormatError

MEAN, STD = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]


class Images(Dataset):
    """Seeded RGB images (3, 64, 32) in [0, 1], given normalised (or as uint8), with torchvision's ``classes``."""

    classes = ["cat", "dog", "ship"]

    def __init__(self, n: int, *, uint8: bool = False, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.raw = torch.rand((n, 3, 64, 32), generator=g)
        self.y = torch.randint(0, 3, (n,), generator=g)
        self.uint8 = uint8

    def __len__(self) -> int:
        return len(self.y)

    def image01(self, i: int) -> np.ndarray:
        x = self.raw[i]
        if self.uint8:
            x = (x * 255).round() / 255
        return x.numpy()

    def __getitem__(self, i: int):
        if self.uint8:
            return (self.raw[i] * 255).round().to(torch.uint8), self.y[i]
        return (self.raw[i] - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None], self.y[i]


class ImageModel(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 3))

    def forward(self, x):
        return self.net(x.float())

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _block_mean(img01: np.ndarray, factor: int) -> np.ndarray:
    """The reference: area downsampling by an integer factor as a plain block mean, (C, H, W) -> (h, w, C)."""
    c, h, w = img01.shape
    x = img01.reshape(c, h // factor, factor, w // factor, factor).mean(axis=(2, 4))
    return np.round(np.clip(x, 0, 1) * 255).transpose(1, 2, 0)


def _fit(tmp_path, data, **rec_kw):
    rec = DecisionRecorder(tmp_path / "ddd", run_name="img", **rec_kw)
    loader = DataLoader(data, batch_size=16)
    t = trainer(tmp_path, [rec], max_epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.fit(ImageModel(), DataLoader(data, batch_size=16), loader)
    return DecisionStore(rec.store_path)


@pytest.mark.parametrize("uint8", [False, True])
def test_thumbnails_equal_an_independent_downsampling_of_the_dataset(tmp_path, uint8):
    data = Images(40, uint8=uint8)
    s = _fit(tmp_path, Subset(data, range(40)), thumbnails=ThumbnailOptions(size=16, unnormalize=(MEAN, STD)))
    assert s.thumbnail_mask("val").all()
    thumbs = s.thumbnails("val")
    assert thumbs.shape == (40, 16, 8, 3) and thumbs.dtype == np.uint8
    ref = np.stack([_block_mean(data.image01(i), 4) for i in range(40)])
    assert np.abs(thumbs.astype(int) - ref).max() <= 1
    np.testing.assert_array_equal(s.thumbnails("val", np.array([7, 3, 7])), thumbs[[7, 3, 7]])
    assert s.class_names("val") == ["cat", "dog", "ship"]  # found through Subset


def test_without_normalisation_each_thumbnail_is_stretched_to_its_own_range(tmp_path):
    data = Images(20)
    s = _fit(tmp_path, WithIndex(data), thumbnails=ThumbnailOptions(size=16))
    thumbs = s.thumbnails("val").astype(int)
    for i in range(20):
        x = data[i][0].numpy()  # as normalised: block mean, then each thumbnail stretched to its own range
        c, h, w = x.shape
        small = x.reshape(c, h // 4, 4, w // 4, 4).mean(axis=(2, 4))
        ref = np.round((small - small.min()) / (small.max() - small.min()) * 255).transpose(1, 2, 0)
        assert np.abs(thumbs[i] - ref).max() <= 1


def test_thumbnails_off_capped_and_never_for_the_training_split_by_default(tmp_path):
    data = Images(40)
    off = _fit(tmp_path / "off", data, thumbnails=False)
    assert off.thumbnail_mask("val") is None
    # 40 images of 64 x 32 at 64 px take 240 KiB; a 0.05 MB cap shrinks them to fit
    capped = _fit(tmp_path / "cap", data, thumbnails=ThumbnailOptions(max_mb=0.05))
    h, w = capped.thumbnails("val").shape[1:3]
    assert 40 * h * w * 3 <= 0.05 * 2**20 and max(h, w) == size_for_budget(40, 64, 32, 3, 64, 0.05) > 8
    with pytest.warns(UserWarning, match="no thumbnails for split 'val'"):
        rec = DecisionRecorder(tmp_path / "tiny" / "ddd", run_name="img", thumbnails=ThumbnailOptions(max_mb=0.001))
        t = trainer(tmp_path / "tiny", [rec], max_epochs=1)
        t.fit(ImageModel(), DataLoader(data, batch_size=16), DataLoader(data, batch_size=16))
    assert DecisionStore(rec.store_path).thumbnail_mask("val") is None
    both = _fit(tmp_path / "train", WithIndex(data), record_train=True)
    assert both.thumbnail_mask("val").all() and both.thumbnail_mask("train") is None
    opt_in = _fit(tmp_path / "train_on", WithIndex(data), record_train=True,
                  thumbnails=ThumbnailOptions(train=True, size=8))
    assert opt_in.thumbnail_mask("train").all() and opt_in.thumbnails("train").shape[1:] == (8, 4, 3)


def test_digits_keep_their_size_and_class_names_can_be_given(tmp_path):
    train, val = digits_loaders()
    from lightning_ddd.demo.models import DigitsClassifier

    rec = DecisionRecorder(tmp_path / "ddd", run_name="d", class_names=[f"digit {i}" for i in range(10)])
    trainer(tmp_path, [rec], max_epochs=1).fit(DigitsClassifier(), train, val)
    s = DecisionStore(rec.store_path)
    assert s.thumbnails("val").shape[1:] == (8, 8, 1)  # never upsampled
    assert s.class_names("val")[3] == "digit 3"
    assert thumbnail_shape(8, 8, 64) == (8, 8)


def test_damaged_thumbnails_are_one_clear_error_and_the_rows_stay_readable(tmp_path):
    s = _fit(tmp_path, Images(20), thumbnails=ThumbnailOptions(size=16))
    with h5py.File(s.path, "a") as f:
        del f["splits/val/has_thumbnail"]
        f["splits/val/has_thumbnail"] = np.zeros(7, bool)
        f["splits/val"].attrs["class_names"] = "not json"
    s = DecisionStore(s.path)
    with pytest.raises(StoreFormatError, match="thumbnail datasets are damaged.*rows are unaffected"):
        s.thumbnail_mask("val")
    with pytest.raises(StoreFormatError, match="class_names"):
        s.class_names("val")
    assert s.read("val", "correct").shape == (3, 20)


def test_thumbnails_survive_a_side_file(tmp_path):
    from lightning_ddd.store.format import RowFlag
    from lightning_ddd.store.pending import merge_pending, save_side_file
    from lightning_ddd.store.row import Row
    from lightning_ddd.store.writer import StoreWriter

    n = 10
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
    row = Row(split="val", global_step=0, epoch=0.0, flags=RowFlag.BEFORE_TRAINING, num_classes=3,
              evaluated=np.ones(n, bool), correct=np.zeros(n, bool), pred=np.zeros(n, np.int64),
              targets=np.zeros(n, np.int64), thumbnail_ids=np.array([9, 0, 4, 5]), thumbnails=images,
              class_names=["a", "b", "c"])
    path = tmp_path / "run.h5"
    w = StoreWriter(path, run_name="run", run_id="r1")
    w.open()
    save_side_file(path, row, "r1")  # as when the disk was full
    assert merge_pending(path).merged == 1
    s = DecisionStore(path)
    np.testing.assert_array_equal(s.thumbnails("val", np.array([0, 4, 5, 9])), images[[1, 2, 3, 0]])
    assert s.thumbnail_mask("val").sum() == 4 and s.class_names("val") == ["a", "b", "c"]


def test_wandb_table_shows_the_stores_thumbnails(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from lightning_ddd.live import wandb_media

    s = _fit(tmp_path, Images(20), thumbnails=ThumbnailOptions(size=16))
    ids = [3, 11, 0]
    got = wandb_media._store_thumbnails(s.path, "val", ids)
    want = s.thumbnails("val", np.array(ids)).astype(np.float32) / 255
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)

    def no_dataset(*a, **k):
        raise AssertionError("the dataset was read although the store has the thumbnails")

    monkeypatch.setattr(wandb_media, "_thumbnail", no_dataset)
    table = wandb_media.WandbMedia()._table([(i, 0, 0, 1, False, "flip_flopping") for i in ids], None, s.path, "val")
    assert table.columns[-1] == "thumbnail" and len(table.data) == 3
    assert wandb_media._store_thumbnails(s.path, "val", [3, 99]) is None  # an id without one: the dataset's
