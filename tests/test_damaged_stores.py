"""Every damaged store is refused by every reader in one line naming the file and the damage (issue 17.4)."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from synthetic_stores import write_store

from lightning_ddd import DecisionStore
from lightning_ddd.analysis import load_runs, stream_dynamics
from lightning_ddd.cli import main
from lightning_ddd.store import StoreFormatError, StoreWriter


def _delete(name):
    def probe(f):
        del f["splits/val"][name]
    return probe


def _reshape(name, shape_fn, dtype=None):
    def probe(f):
        g = f["splits/val"]
        old = g[name]
        new_shape = shape_fn(old.shape)
        dt = dtype or old.dtype
        del g[name]
        g.create_dataset(name, data=np.zeros(new_shape, dtype=dt))
    return probe


def _shorten(name):
    def probe(f):
        ds = f["splits/val"][name]
        ds.resize(ds.shape[0] - 1, axis=0)
    return probe


def _attr(where, key, value):
    def probe(f):
        f[where].attrs[key] = value
    return probe


def _split_not_group(f):
    f["splits"].create_dataset("extra", data=np.arange(3))


def _splits_not_group(f):
    del f["splits"]
    f.create_dataset("splits", data=np.arange(3))


def _bad_committed(f):
    f["splits/val/committed"][0] = 7


def _bad_split_name(f):
    f["splits"].create_group("a b<i>")


PROBES = {
    **{f"deleted {n}": _delete(n) for n in ("correct", "committed", "ids", "targets", "epoch", "pred", "evaluated",
                                            "global_step", "flags", "loss")},
    "reshaped correct (columns)": _reshape("correct", lambda s: (s[0], s[1] + 1)),
    "reshaped correct (1-D)": _reshape("correct", lambda s: (s[0] * s[1],)),
    "reshaped ids": _reshape("ids", lambda s: (s[0] + 3,)),
    "reshaped targets (2-D)": _reshape("targets", lambda s: (s[0], 2)),
    "reshaped epoch (2-D)": _reshape("epoch", lambda s: (s[0], 2)),
    "reshaped pred": _reshape("pred", lambda s: (s[0], s[1] - 1)),
    "float ids": _reshape("ids", lambda s: s, dtype=np.float64),
    "string correct": _reshape("correct", lambda s: s, dtype="S1"),
    "fewer rows in correct": _shorten("correct"),
    "fewer rows in epoch": _shorten("epoch"),
    "fewer rows in pred": _shorten("pred"),
    "fewer rows in global_step": _shorten("global_step"),
    "num_samples text": _attr("splits/val", "num_samples", "many"),
    "num_samples float": _attr("splits/val", "num_samples", 3.5),
    "num_samples negative": _attr("splits/val", "num_samples", -1),
    "num_classes zero": _attr("splits/val", "num_classes", 0),
    "format_version text": _attr("/", "format_version", "1"),
    "format_version float": _attr("/", "format_version", 1.5),
    "format_version newer": _attr("/", "format_version", 99),
    "fields not json": _attr("splits/val", "fields", "correct,pred"),
    "fields an int": _attr("splits/val", "fields", 3),
    "fields unknown": _attr("splits/val", "fields", json.dumps(["evaluated", "correct", "pred", "bogus"])),
    "fields without correct": _attr("splits/val", "fields", json.dumps(["evaluated", "pred"])),
    "kind unknown": _attr("splits/val", "kind", "test"),
    "metadata list": _attr("/", "metadata", "[1, 2]"),
    "metadata NaN": _attr("/", "metadata", '{"lr": NaN}'),
    "metadata not json": _attr("/", "metadata", "{lr: 0.1"),
    "metadata a number": _attr("/", "metadata", 3),
    "run_name a number": _attr("/", "run_name", 5),
    "split entry a dataset": _split_not_group,
    "splits a dataset": _splits_not_group,
    "committed not 0/1": _bad_committed,
    "split named with markup": _bad_split_name,
    "not a store": _attr("/", "format", "something-else"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pristine")
    return write_store(folder / "run.h5", "run", 0, n=50, epochs=3)


def _one_line_error(capsys, path) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("lightning-ddd: error:") and str(path) in err, err
    return err


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_damaged_store_is_refused_by_every_reader(probe, pristine, tmp_path, capsys):
    path = tmp_path / "run.h5"
    shutil.copy(pristine, path)
    with h5py.File(path, "a") as f:
        PROBES[probe](f)
    with pytest.raises(StoreFormatError) as info:
        DecisionStore(path, retries=1)
    assert str(path) in str(info.value)
    with pytest.raises(StoreFormatError):
        load_runs([str(path)])
    with pytest.raises(StoreFormatError):
        stream_dynamics(path)
    assert main(["info", str(path)]) == 1
    _one_line_error(capsys, path)
    assert main(["info", "--json", str(path)]) == 1
    assert capsys.readouterr().out == ""
    assert main(["report", str(path), "--out", str(tmp_path / "rep"), "--quiet"]) == 1
    _one_line_error(capsys, path)
    assert not (tmp_path / "rep").exists()
    assert main(["export", str(path), "--out", str(tmp_path / "t.csv"), "--quiet"]) == 1
    _one_line_error(capsys, path)
    assert not (tmp_path / "t.csv").exists()
    # the writer refuses it too and never "repairs" it by deleting a split
    before = path.read_bytes()
    with pytest.raises(StoreFormatError):
        StoreWriter(path, run_name="run", run_id="x").open()
    assert path.read_bytes() == before


def test_pristine_store_passes_and_info_json_is_strict(pristine, capsys):
    s = DecisionStore(pristine)
    assert s.info("val").num_rows == 4
    assert main(["info", "--json", str(pristine)]) == 0
    json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))


def test_directory_named_like_a_store_is_refused(pristine, tmp_path, capsys):
    folder = tmp_path / "runs"
    folder.mkdir()
    shutil.copy(pristine, folder / "a.h5")
    (folder / "b.h5").mkdir()
    assert main(["info", str(folder / "*.h5")]) == 1
    _one_line_error(capsys, folder / "b.h5")
    assert main(["info", str(folder)]) == 1
    _one_line_error(capsys, folder / "b.h5")


def test_interrupted_split_creation_is_skipped_not_an_error(pristine, tmp_path):
    path = tmp_path / "run.h5"
    shutil.copy(pristine, path)
    with h5py.File(path, "a") as f:  # a kill during creation: group and some datasets, no 'fields' yet
        g = f["splits"].create_group("val_1")
        g.create_dataset("ids", data=np.arange(50))
    assert DecisionStore(path).splits == ["val"]


def test_kill_during_resize_leaves_a_readable_store(pristine, tmp_path):
    path = tmp_path / "run.h5"
    shutil.copy(pristine, path)
    with h5py.File(path, "a") as f:  # resized part of the datasets for a new row, never committed
        g = f["splits/val"]
        for name in ("committed", "correct", "epoch"):
            g[name].resize(g[name].shape[0] + 1, axis=0)
    s = DecisionStore(path)
    assert s.info("val").num_rows == 4
    np.testing.assert_array_equal(s.read("val", "correct"), DecisionStore(pristine).read("val", "correct"))


def test_metadata_with_nan_hyperparameters_is_written_as_strict_json(tmp_path):
    w = StoreWriter(tmp_path / "m.h5", run_name="m", run_id="m",
                    metadata={"hparams": {"dropout": float("nan"), "clip": float("inf"), "lr": np.float32(0.1)}})
    w.open()
    meta = DecisionStore(tmp_path / "m.h5").metadata
    assert meta["hparams"] == {"dropout": "nan", "clip": "inf", "lr": pytest.approx(0.1)}
