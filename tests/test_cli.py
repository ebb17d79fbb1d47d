"""The command line through main(argv), on stores written by real tiny training runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import digits_loaders, trainer

from lightning_ddd import DecisionRecorder
from lightning_ddd.analysis import (
    count_correct,
    load_runs,
    pairwise_consistency,
    runs_at_row,
    summarize_difficulty,
    summarize_dynamics,
)
from lightning_ddd.cli import main
from lightning_ddd.demo.models import DigitsClassifier

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_stores")
    for name, seed, arch in (("base", 0, "mlp"), ("init-1", 1, "mlp"), ("init-2", 2, "mlp"), ("arch", 0, "cnn")):
        train, val = digits_loaders()
        trainer(folder, [DecisionRecorder(folder, run_name=name)], max_epochs=3).fit(
            DigitsClassifier(arch=arch, init_seed=seed, lr=0.02), train, val)
    return folder


def test_info_text_json_and_no_torch(stores, capsys):
    assert main(["info", str(stores / "base.h5")]) == 0
    out = capsys.readouterr().out
    assert "split 'val' (validation): 4 rows (epochs 0..3), 809 samples, output width 10 (10 distinct targets)" in out
    assert main(["info", str(stores), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["run_name"] for d in data] == ["arch", "base", "init-1", "init-2"]
    code = ("import sys; from lightning_ddd.cli import main; rc = main(['info', sys.argv[1]]);"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'pytorch_lightning')];"
            "sys.exit(rc or len(bad))")
    assert subprocess.run([sys.executable, "-c", code, str(stores / "base.h5")], capture_output=True).returncode == 0


def test_info_on_a_store_being_written(stores, tmp_path, capsys):
    path = tmp_path / "live.h5"
    path.write_bytes((stores / "base.h5").read_bytes())
    with h5py.File(path, "a") as f:  # a row in progress: resized, data written, not committed
        g = f["splits/val"]
        for ds in g.values():
            if ds.maxshape and ds.maxshape[0] is None:
                ds.resize(ds.shape[0] + 1, axis=0)
    assert main(["info", str(path)]) == 0
    assert "4 rows" in capsys.readouterr().out


def _check_report_folder(out: Path) -> dict:
    html = (out / "index.html").read_text()
    refs = re.findall(r"(?:src|href)='([^']+)'", html)
    assert refs, "the page shows nothing"
    for ref in refs:
        assert not re.match(r"^(https?:)?//", ref), f"remote reference {ref}"
        if ref.startswith("#"):  # a link within the page: its anchor exists
            anchor = ref[1:].split("=")[0]
            assert anchor == "sample" or f"id='{anchor}'" in html, f"{ref} points to no anchor"
            continue
        assert (out / ref).is_file(), f"{ref} is referenced but missing"
    assert "http://" not in html and "https://" not in html
    summary = json.loads((out / "summary.json").read_text())
    for fig in summary["figures"]:
        data = (out / fig["png"]).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000
        import matplotlib.image

        img = matplotlib.image.imread(out / fig["png"])
        assert img.shape[0] > 100 and img.std() > 0.01  # a real, non-blank picture
        if "svg" in fig:
            svg = (out / fig["svg"]).read_text()
            assert svg.lstrip().startswith("<?xml") and "</svg>" in svg and len(svg) < 2 * 1024 * 1024
    return summary


def test_report_matches_the_analysis_api(stores, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(stores), "--out", str(out), "--bootstrap", "200", "--base", "base",
                 "--conditions", "auto", "--quiet"]) == 0
    summary = _check_report_folder(out)
    names = {f["name"] for f in summary["figures"]}
    assert {"k_histogram", "kappa_heatmaps", "kappa_to_base", "raster_run000-base", "data_map_run000-base",
            "categories_run000-base", "learned_forgotten_run000-base", "first_learned_run000-base"} <= names
    assert sum(n.startswith("raster_") for n in names) == 3  # --per-run-limit 3, base first
    runs = load_runs(stores)
    m = runs_at_row(runs)
    k = count_correct(m.correct)
    d = summarize_difficulty(k, 4, tolerance=0)
    assert summary["difficulty"]["counts"] == d.counts
    cons = pairwise_consistency(m.correct, runs=m.runs, n_boot=200, seed=0)
    np.testing.assert_allclose(np.array(summary["consistency"]["all"]["kappa"], float), cons.kappa, atol=1e-12)
    np.testing.assert_allclose(np.array(summary["consistency"]["all"]["ci_low"], float), cons.ci_low, atol=1e-12)
    b = list(m.runs).index("base")  # intervals of kappa to the base at the last epoch: the same resamples
    np.testing.assert_allclose(np.array(summary["to_base"]["ci_low_last"], float), cons.ci_low[b], atol=1e-12)
    np.testing.assert_allclose(np.array(summary["to_base"]["ci_high_last"], float), cons.ci_high[b], atol=1e-12)
    mid = pairwise_consistency(m.correct, samples=d.in_between, runs=m.runs, n_boot=200, seed=0)
    np.testing.assert_allclose(np.array(summary["consistency"]["in_between"]["kappa"], float), mid.kappa,
                               atol=1e-12)
    base = runs[[r.name for r in runs].index("base")]
    dyn = summarize_dynamics(base.correct, base.evaluated)
    assert summary["per_run"]["base"]["category_fractions"] == pytest.approx(dyn.category_fractions())
    assert summary["conditions"]["all"]["conditions"] == ["arch", "base", "init"]
    table = (out / "samples.csv").read_text().splitlines()
    assert len(table) == 810 and table[0].startswith("id,target,category")


def test_single_run_report_explains_missing_figures(stores, tmp_path):
    out = tmp_path / "single"
    assert main(["report", str(stores / "base.h5"), "--out", str(out), "--quiet"]) == 0
    summary = _check_report_folder(out)
    assert any("Only one run" in n for n in summary["notes"])
    assert "Only one run" in (out / "index.html").read_text()
    assert not any(f["name"] == "kappa_heatmaps" for f in summary["figures"])


def test_export_csv_and_parquet(stores, tmp_path, capsys):
    csv_path = tmp_path / "s.csv"
    assert main(["export", str(stores), "--out", str(csv_path), "--base", "base", "--quiet"]) == 0
    header = csv_path.read_text().splitlines()[0].split(",")
    for col in ("id", "target", "category", "first_learned_row", "forgetting_events", "confidence", "variability",
                "aum", "k", "difficulty"):
        assert col in header
    pq_path = tmp_path / "s.parquet"
    assert main(["export", str(stores), "--format", "parquet", "--out", str(pq_path), "--json"]) == 0
    import pyarrow.parquet as pq

    t = pq.read_table(pq_path)
    assert t.num_rows == 809
    runs = load_runs(stores)
    np.testing.assert_array_equal(t.column("k").to_numpy(), count_correct(runs_at_row(runs).correct))


def _fails(argv, capsys, match):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if not ln.startswith("[lightning-ddd]")]  # progress lines
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("lightning-ddd: error: "), err
    assert re.search(match, err), err


def test_bad_input_is_one_line_and_exit_1(stores, tmp_path, capsys):
    out = tmp_path / "never"
    _fails(["report", str(tmp_path / "missing.h5"), "--out", str(out)], capsys, "No decision store")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5 at all")
    _fails(["info", str(text)], capsys, "not HDF5")
    _fails(["report", str(text), "--out", str(out)], capsys, "not HDF5")
    newer = tmp_path / "newer.h5"
    newer.write_bytes((stores / "base.h5").read_bytes())
    with h5py.File(newer, "a") as f:
        f.attrs["format_version"] = 99
    _fails(["info", str(newer)], capsys, "format version 99.*Upgrade")
    truncated = tmp_path / "trunc.h5"
    data = (stores / "base.h5").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    _fails(["report", str(truncated), "--out", str(out)], capsys, "truncated or damaged|Cannot read")
    other = tmp_path / "other"
    train, val = digits_loaders(n_val=300)
    trainer(other, [DecisionRecorder(other, run_name="small")], max_epochs=1).fit(DigitsClassifier(), train, val)
    _fails(["report", str(stores / "base.h5"), str(other / "small.h5"), "--out", str(out)], capsys,
           "different datasets")
    _fails(["report", str(stores), "--out", str(out), "--base", "nope"], capsys, "Base run 'nope'")
    assert not out.exists() and not list(tmp_path.glob(".never.tmp-*"))


def test_a_tolerance_the_runs_cannot_support_is_refused(stores, tmp_path, capsys):
    out = tmp_path / "x.csv"
    _fails(["export", str(stores), "--tolerance", "100", "--out", str(out)], capsys,
           r"--tolerance 100 needs at least 203 runs, got 4: pass --tolerance 0")
    assert not out.exists()
    _fails(["study", "make", str(stores), "--out", str(tmp_path / "st"), "--trials", "0"], capsys,
           "--trials must be an integer >= 1")
    _fails(["study", "score", "x.csv", "--study", str(tmp_path), "--out", str(tmp_path / "sc"), "--bootstrap", "-1"],
           capsys, "--bootstrap must be an integer >= 0")


@pytest.mark.skipif(shutil.which("setpriv") is None or not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root and setpriv to drop the right to read every file")
def test_a_store_the_user_may_not_read_says_permission_denied(stores, tmp_path):
    store = tmp_path / "base.h5"
    shutil.copy(stores / "base.h5", store)
    store.chmod(0o000)  # root without CAP_DAC_OVERRIDE is refused like any user
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    for argv in (["info", str(store)], ["report", str(store), "--out", str(tmp_path / "r")],
                 ["export", str(store), "--out", str(tmp_path.parent / f"{tmp_path.name}.csv")]):
        proc = subprocess.run([*drop, sys.executable, "-m", "lightning_ddd.cli", *argv], capture_output=True,
                              text=True, timeout=120)
        lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("[lightning-ddd]")]
        assert proc.returncode == 1 and len(lines) == 1, proc.stderr
        assert "Permission denied" in lines[0] and str(store) in lines[0], proc.stderr
        assert "damaged" not in lines[0] and "hdf5" not in lines[0].lower()
    store.chmod(0o644)


@pytest.mark.parametrize("sub", ["info", "report", "export", "demo"])
def test_help_explains_every_option(sub, capsys):
    from lightning_ddd.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        main([sub, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    subparser = build_parser()._subparsers._group_actions[0].choices[sub]
    for action in subparser._actions:
        assert action.help, f"{sub} {action.option_strings or action.dest} has no help"
        for opt in action.option_strings:
            assert opt in text


def test_partial_rows_are_visible_in_info_and_the_report(tmp_path, capsys):
    """limit_val_batches: each row covers part of the split; info, summary.json and the page say so."""
    folder = tmp_path / "runs"
    for name, seed in (("a", 0), ("b", 1), ("c", 2)):
        train, val = digits_loaders(val_batch_size=100)
        trainer(folder, [DecisionRecorder(folder, run_name=name)], max_epochs=2, limit_val_batches=3,
                num_sanity_val_steps=0).fit(DigitsClassifier(init_seed=seed), train, val)
    assert main(["info", str(folder / "a.h5")]) == 0
    out = capsys.readouterr().out
    assert "output width 10 (10 distinct targets)" in out
    assert "2 of 2 rows cover only part of the 809 samples (row 0: 300, row 1: 300" in out
    assert main(["report", str(folder), "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["coverage"]["evaluated_per_row"]["a"] == [300, 300]
    assert summary["coverage"]["evaluated_at_comparison"] == {"a": 300, "b": 300, "c": 300}
    assert any("cover only part of the 809 samples" in n for n in summary["notes"])
    assert "cover only part of the 809 samples" in (tmp_path / "rep" / "index.html").read_text()


def test_the_explorer_raster_marks_cells_a_row_did_not_evaluate(tmp_path):
    """Two bit planes per sample (right, evaluated): a partial row's missing cells are not drawn as wrong."""
    import base64

    from lightning_ddd import DecisionStore

    folder = tmp_path / "runs"
    for name, seed in (("a", 0), ("b", 1)):
        train, val = digits_loaders(val_batch_size=100)
        trainer(folder, [DecisionRecorder(folder, run_name=name)], max_epochs=2, limit_val_batches=3,
                num_sanity_val_steps=0).fit(DigitsClassifier(init_seed=seed), train, val)
    assert main(["report", str(folder), "--out", str(tmp_path / "rep"), "--quiet", "--null-draws", "0"]) == 0
    text = (tmp_path / "rep" / "explorer" / "r-0000.js").read_text()
    raw = np.frombuffer(base64.b64decode(json.loads(text[text.index(",") + 1: text.rindex(")")])), np.uint8)
    m, r = 2, 2
    bits = np.unpackbits(raw.reshape(-1, int(np.ceil(2 * m * r / 8))), axis=1)[:, : 2 * m * r]
    right, seen = bits[:, : m * r].reshape(-1, m, r), bits[:, m * r:].reshape(-1, m, r)
    for j, name in enumerate(("a", "b")):
        s = DecisionStore(folder / f"{name}.h5")
        ev, co = s.read("val", "evaluated"), s.read("val", "correct")
        n = right.shape[0]
        np.testing.assert_array_equal(seen[:, j, :].T, ev[:, :n])
        np.testing.assert_array_equal(right[:, j, :].T, (co & ev)[:, :n])
    assert not seen[300:].any()  # rows covered 300 of 809 samples: the rest is "not evaluated", not "wrong"
