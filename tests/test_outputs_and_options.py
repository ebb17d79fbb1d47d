"""Outputs never destroy inputs or foreign files; names are data; options out of range are one line (issue 17)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from synthetic_stores import write_runs, write_store

from lightning_ddd import DecisionStore
from lightning_ddd.cli import main
from lightning_ddd.store import Row, RowFlag, StoreWriter, check_split_name
from lightning_ddd.store.pending import pending_dir, save_side_file

NAMES = ["base", "init-1", "init-2", "lr-1", "arch"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return write_runs(tmp_path_factory.mktemp("runs") / "stores", NAMES)


def _digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lightning-ddd: error:"), err
    return err[0]


# ------------------------------------------------------------------------------------------ 17.1 outputs
def test_report_refuses_a_foreign_folder_and_replaces_its_own(runs, tmp_path, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    assert main(["report", str(runs), "--out", str(out), "--quiet", "--bootstrap", "20"]) == 1
    assert "--force" in _err(capsys)
    assert (out / "thesis.tex").read_text() == "years of work"
    mine = tmp_path / "rep"
    assert main(["report", str(runs), "--out", str(mine), "--quiet", "--bootstrap", "20"]) == 0
    first = json.loads((mine / "summary.json").read_text())
    assert main(["report", str(runs), "--out", str(mine), "--quiet", "--bootstrap", "20", "--seed", "3"]) == 0
    assert json.loads((mine / "summary.json").read_text())["n_runs"] == first["n_runs"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rep")]  # nothing left aside
    assert main(["report", str(runs), "--out", str(out), "--quiet", "--bootstrap", "20", "--force"]) == 0
    assert (out / "index.html").exists() and not (out / "thesis.tex").exists()


@pytest.mark.parametrize("where", ["same", "inside", "parent"])
def test_report_never_writes_over_or_inside_its_inputs(runs, tmp_path, capsys, where):
    copy = tmp_path / "stores"
    shutil.copytree(runs, copy)
    before = _digest(tmp_path)
    out = {"same": copy, "inside": copy / "report", "parent": tmp_path}[where]
    for extra in ([], ["--force"]):
        assert main(["report", str(copy), "--out", str(out), "--quiet", *extra]) == 1
        assert "overlaps the input" in _err(capsys)
    one = str(copy / "base.h5")
    assert main(["report", one, str(copy / "arch.h5"), str(copy / "lr-1.h5"), "--out", one, "--quiet"]) == 1
    _err(capsys)
    assert _digest(tmp_path) == before


def test_export_never_overwrites_an_input_or_a_foreign_file(runs, tmp_path, capsys):
    copy = tmp_path / "stores"
    shutil.copytree(runs, copy)
    before = _digest(copy)
    for extra in ([], ["--force"]):
        assert main(["export", str(copy), "--out", str(copy / "base.h5"), "--quiet", *extra]) == 1
        assert "overlaps the input" in _err(capsys)
    assert _digest(copy) == before
    notes = tmp_path / "notes.csv"
    notes.write_text("my,own,data\n")
    assert main(["export", str(copy), "--out", str(notes), "--quiet"]) == 1
    assert "--force" in _err(capsys)
    assert notes.read_text() == "my,own,data\n"
    table = tmp_path / "t.csv"
    assert main(["export", str(copy), "--out", str(table), "--quiet"]) == 0
    assert main(["export", str(copy), "--out", str(table), "--quiet", "--base", "arch"]) == 0  # its own: replaced
    assert table.read_text().startswith("id,target,category,")
    if importlib.util.find_spec("pyarrow") is not None:
        parquet = tmp_path / "t.parquet"
        assert main(["export", str(copy), "--format", "parquet", "--out", str(parquet), "--quiet"]) == 0
        assert main(["export", str(copy), "--format", "parquet", "--out", str(parquet), "--quiet"]) == 0
    assert main(["export", str(copy), "--out", str(notes), "--quiet", "--force"]) == 0


def test_demo_refuses_a_foreign_folder_before_training(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "data.npy").write_bytes(b"precious")
    assert main(["demo", "--out", str(out), "--quiet", "--quick"]) == 1
    assert "--force" in _err(capsys)
    assert [p.name for p in out.iterdir()] == ["data.npy"]


def _small_fs(tmp_path: Path, size: str) -> Path | None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        return None
    return mnt


def test_report_and_export_into_a_full_disk_leave_no_half_file(runs, tmp_path, capsys):
    mnt = _small_fs(tmp_path, "64k")
    if mnt is None:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        (mnt / "old").mkdir()
        (mnt / "old" / "filler").write_bytes(b"x" * (shutil.disk_usage(mnt).free - 4096))
        assert main(["report", str(runs), "--out", str(mnt / "rep"), "--quiet", "--bootstrap", "20"]) == 1
        _err(capsys)
        assert main(["export", str(runs), "--out", str(mnt / "t.csv"), "--quiet"]) == 1
        _err(capsys)
        assert sorted(p.name for p in mnt.iterdir()) == ["old"]  # no temporary or partial output left
        assert sorted(p.name for p in (mnt / "old").iterdir()) == ["filler"]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ------------------------------------------------------------------------------------------ 17.5 names
@pytest.mark.parametrize("name", ["a/b", "..", "../x", "<b>x</b>", "", "val 1", ".hidden", "-x", "x" * 101])
def test_split_names_that_cannot_be_read_back_are_refused(name, tmp_path):
    with pytest.raises(ValueError, match="Split name"):
        check_split_name(name)
    w = StoreWriter(tmp_path / "s.h5", run_name="s", run_id="s")
    w.open()
    n = 4
    row = Row(name, 1, 1.0, RowFlag.NONE, 2, np.ones(n, bool), np.ones(n, bool), np.zeros(n, int), np.zeros(n, int))
    with pytest.raises(ValueError, match="Split name"):
        w.append(row)
    assert DecisionStore(tmp_path / "s.h5").splits == []
    pytest.importorskip("lightning")  # the recorder's own check (not in the torch-free CI legs)
    from lightning_ddd import DecisionRecorder

    with pytest.raises(ValueError, match="Split name"):
        DecisionRecorder(tmp_path, splits=[name])
    with pytest.raises(ValueError, match="Split name"):
        DecisionRecorder(tmp_path, train_split=name)


def test_run_names_are_drawn_literally_and_get_their_own_figures(tmp_path, capsys):
    folder = write_runs(tmp_path / "stores", ["lr-0.1", "lr-0-1", "cost $5 $x^2$", "b"])
    out = tmp_path / "rep"
    assert main(["report", str(folder), "--out", str(out), "--quiet", "--bootstrap", "20", "--per-run-limit", "4",
                 "--base", "lr-0.1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rasters = [f for f in summary["figures"] if f["name"].startswith("raster_")]
    assert len(rasters) == 4 and len({f["png"] for f in rasters}) == 4
    by_run = {f["caption"].removeprefix("Decision raster of ").removesuffix(", samples sorted by difficulty."):
              (out / f["png"]).read_bytes() for f in rasters}
    assert by_run["lr-0.1"] != by_run["lr-0-1"]  # two runs, two different figures
    svg = next(f for f in summary["figures"] if f["name"] == "kappa_heatmaps")["svg"]
    assert "cost $5 $x^2$" in (out / svg).read_text().replace("&#36;", "$")


# ------------------------------------------------------------------------------------------ 17.6 options
@pytest.mark.parametrize("args, words", [
    (["--tolerance", "-1"], "--tolerance"),
    (["--tolerance", "2"], "tolerance 2"),
    (["--bootstrap", "-5"], "--bootstrap"),
    (["--per-run-limit", "0"], "--per-run-limit"),
    (["--per-run-limit", "-2"], "--per-run-limit"),
    (["--seed", "-1"], "--seed"),
    (["--epoch", "nan"], "--epoch"),
])
def test_report_options_out_of_range_are_one_line(runs, tmp_path, capsys, args, words):
    assert main(["report", str(runs), "--out", str(tmp_path / "r"), "--quiet", *args]) == 1
    assert words in _err(capsys)
    assert not (tmp_path / "r").exists()


def test_bad_side_inputs_are_one_line_naming_the_file(runs, tmp_path, capsys):
    empty = tmp_path / "le.npy"
    empty.write_bytes(b"")
    bad_json = tmp_path / "cond.json"
    bad_json.write_text("{not json")
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(["base", "init"]))
    wrong_len = tmp_path / "short.npy"
    np.save(wrong_len, np.zeros(3, bool))
    for args, name in ((["--label-errors", str(empty)], empty), (["--conditions", str(bad_json)], bad_json),
                       (["--conditions", str(as_list)], as_list), (["--label-errors", str(wrong_len)], None)):
        assert main(["report", str(runs), "--out", str(tmp_path / "r"), "--quiet", *args]) == 1
        line = _err(capsys)
        if name is not None:
            assert str(name) in line
    assert main(["export", str(runs), "--tolerance", "-1", "--out", str(tmp_path / "x.csv")]) == 1
    _err(capsys)


# ------------------------------------------------------------------------------------------ 17.3 pending rows
def test_pending_rows_are_visible_and_merged_by_repair(tmp_path, capsys):
    path = write_store(tmp_path / "run.h5", "run", 0, n=40, epochs=2)
    w = StoreWriter(path, run_name="run", run_id="id-run-0")
    n = 40
    rng = np.random.default_rng(5)
    targets = DecisionStore(path).targets("val")
    correct = rng.random(n) < 0.5
    # a row parked in a side file, as when the disk was full (tests/test_write_failures.py makes a real one)
    save_side_file(w.path, Row("val", 999, 3.0, RowFlag.NONE, 5, np.ones(n, bool), correct,
                        np.where(correct, targets, (targets + 1) % 5), targets,
                        loss=np.ones(n, np.float32), margin=np.ones(n, np.float32)), w.run_id)
    assert DecisionStore(path).pending_rows == 1 and DecisionStore(path).info("val").num_rows == 3
    assert main(["info", str(path)]) == 0
    assert "1 row(s) pending" in capsys.readouterr().out
    others = [write_store(tmp_path / f"{n}.h5", n, i + 1, n=40, epochs=2) for i, n in enumerate(["b", "c"])]
    assert main(["report", str(path), *map(str, others), "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    notes = json.loads((tmp_path / "rep" / "summary.json").read_text())["notes"]
    assert any("1 row(s) pending" in n and "lightning-ddd repair" in n for n in notes)
    assert main(["repair", str(path)]) == 0
    assert "merged 1" in capsys.readouterr().out
    s = DecisionStore(path)
    assert s.pending_rows == 0 and s.info("val").num_rows == 4
    np.testing.assert_array_equal(s.read("val", "correct")[-1], correct)
    assert not pending_dir(path).exists()


def test_demo_reruns_in_its_own_folder(tmp_path, capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("lightning")
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--quick", "--no-report", "--quiet", "--epochs", "1"]
    assert main(args) == 0
    first = {p.name: p.stat().st_mtime_ns for p in (out / "stores").iterdir()}
    capsys.readouterr()
    assert main(args) == 0  # its own folder: continued, finished runs skipped, nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in (out / "stores").iterdir()} == first
