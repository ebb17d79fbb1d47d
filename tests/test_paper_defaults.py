"""Defaults follow the paper (issue 11): one comparison epoch, +n epochs, different data, the whole grid,
live scalars equal to the analysis of the store, forgetting as the literature sorts it. Every expected
number is computed with numpy in the test itself."""

from __future__ import annotations

import csv
import html
import json

import lightning.pytorch as pl
import numpy as np
import pytest
from helpers import digits_loaders, trainer
from synthetic_stores import write_store

from lightning_ddd import DecisionRecorder, DecisionStore, validate_before_fit
from lightning_ddd.analysis import load_trajectory, summarize_dynamics
from lightning_ddd.cli import main
from lightning_ddd.demo.models import DigitsClassifier
from lightning_ddd.grid import RunSpec, check_grid, paper_grid

E = 4  # every run records epochs 0..4; the base goes on to epoch 8


def np_kappa(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    po = np.mean(a == b)
    pa, pb = a.mean(), b.mean()
    pe = pa * pb + (1 - pa) * (1 - pb)
    return 1.0 if pe == 1 else float((po - pe) / (1 - pe))


@pytest.fixture(scope="module")
def grid_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid") / "stores"
    folder.mkdir()
    write_store(folder / "base.h5", "base", 0, epochs=8)
    for i, name in enumerate(["init-1", "init-2", "lr-1", "half-a", "half-b"], 1):
        write_store(folder / f"{name}.h5", name, i, epochs=E)
    cond = {"base": "base", "init-1": "init", "init-2": "init", "lr-1": "lr", "half-a": "half data",
            "half-b": "half data"}
    (folder.parent / "conditions.json").write_text(json.dumps(cond))
    return folder


def _arrays(folder):
    out = {}
    for p in sorted(folder.glob("*.h5")):
        s = DecisionStore(p)
        out[s.run_name] = (s.rows("val")["epoch"], s.read("val", "correct"))
    return out


def test_report_compares_at_the_latest_common_epoch_and_adds_plus_n_and_different_data(grid_runs, tmp_path,
                                                                                         capsys):
    out = tmp_path / "rep"
    assert main(["report", str(grid_runs), "--out", str(out), "--bootstrap", "50", "--base", "base",
                 "--conditions", str(grid_runs.parent / "conditions.json")]) == 0
    err = capsys.readouterr().err
    assert "epoch 4 (the latest epoch every run recorded)" in err
    s = json.loads((out / "summary.json").read_text())
    assert s["comparison"]["epoch"] == E and s["row"] == "epoch 4"
    page = (out / "index.html").read_text()
    assert "the latest epoch every run recorded" in page and "id='circularity'" in page and "--reference" in page
    data = _arrays(grid_runs)
    names = s["runs"]
    at_e = {n: c[list(e).index(E)] for n, (e, c) in data.items()}
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            assert s["consistency"]["all"]["kappa"][i][j] == pytest.approx(np_kappa(at_e[a], at_e[b]), abs=1e-12)
    k = np.sum([at_e[n] for n in names], axis=0)
    mid = (k > 0) & (k < len(names))
    assert s["difficulty"]["counts"]["in_between"] == int(mid.sum())
    # "+n epochs": base at E + n against base at E, all and in-between samples
    epochs, base = data["base"]
    plus = s["plus_epochs"]
    assert [p["n"] for p in plus] == [1, 2, 3, 4]
    for p in plus:
        later = base[list(epochs).index(E + p["n"])]
        assert p["kappa_all"] == pytest.approx(np_kappa(later, at_e["base"]), abs=1e-12)
        assert p["kappa_in_between"] == pytest.approx(np_kappa(later[mid], at_e["base"][mid]), abs=1e-12)
    assert "+n epochs" in page
    # "different data": the two halves with each other
    dd = s["different_data"]
    assert dd["runs"] == ["half-a", "half-b"]
    assert dd["kappa_all"] == pytest.approx(np_kappa(at_e["half-a"], at_e["half-b"]), abs=1e-12)
    assert dd["kappa_in_between"] == pytest.approx(np_kappa(at_e["half-a"][mid], at_e["half-b"][mid]), abs=1e-12)
    assert "disjoint halves" in page
    # per-run outputs up to the comparison epoch (the base's per-run block stops at E)
    assert s["per_run"]["base"]["epochs"] == [0, 1, 2, 3, 4]
    rows = list(csv.DictReader((out / "samples.csv").open()))
    c = base[: E + 1]
    forgot = np.sum(c[1:-1] & ~c[2:], axis=0)  # burn-in 1: transitions between rows 1..E
    never = ~c[1:].any(axis=0)
    want = np.where(never, np.inf, forgot)
    got = np.array([float(r["forgetting_events"]) for r in rows])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal([int(r["observed_forgetting_events"]) for r in rows], forgot)


def test_all_rows_option_and_conditions_epoch_and_missing_epoch(grid_runs, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", str(grid_runs), "--out", str(out), "--bootstrap", "0", "--base", "base", "--all-rows",
                 "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["per_run"]["base"]["epochs"] == list(range(9)) and s["comparison"]["epoch"] == E
    cond = tmp_path / "cond.json"
    plain = json.loads((grid_runs.parent / "conditions.json").read_text())
    cond.write_text(json.dumps({"conditions": plain, "comparison_epoch": 3}))
    assert main(["report", str(grid_runs), "--out", str(out), "--bootstrap", "0", "--base", "base",
                 "--conditions", str(cond), "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["comparison"]["epoch"] == 3 and "comparison epoch of" in s["comparison"]["how"]
    assert [p["n"] for p in s["plus_epochs"]] == [1, 2, 3, 4, 5]
    assert main(["report", str(grid_runs), "--out", str(out), "--epoch", "6", "--quiet"]) == 1
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "has no row at epoch 6" in line and "[0, 1, 2, 3, 4]" in line


def test_export_uses_the_comparison_epoch_and_takes_row_and_epoch(grid_runs, tmp_path, capsys):
    data = _arrays(grid_runs)
    names = sorted(data)
    for args, epoch in (([], E), (["--epoch", "2"], 2)):
        table = tmp_path / f"t{epoch}.csv"
        assert main(["export", str(grid_runs), "--out", str(table), "--base", "base", "--quiet", *args]) == 0
        rows = list(csv.DictReader(table.open()))
        k = np.sum([c[list(e).index(epoch)] for e, c in (data[n] for n in names)], axis=0)
        np.testing.assert_array_equal([int(r["k"]) for r in rows], k)
        epochs, base = data["base"]
        first = [float(r["first_learned_epoch"]) if r["first_learned_epoch"] else np.nan for r in rows]
        c = base[1: epoch + 1]
        want = np.where(c.any(0), np.argmax(c, axis=0) + 1, np.nan)
        np.testing.assert_array_equal(first, want)


def test_grid_is_the_papers_whole_grid():
    g = paper_grid(repeats=5, lr=0.1, nondeterministic=5)
    lrs = [r.changes["lr"] for r in g if r.condition == "lr"]
    assert lrs == [0.148, 0.149, 0.15, 0.151, 0.152]
    nd = [r for r in g if r.condition == "cuda non-determinism"]
    assert len(nd) == 5 and all(r.changes["deterministic"] is False and r.changes["benchmark"] is True for r in nd)
    assert [r.changes["lr"] for r in paper_grid(repeats=3, lr=0.1) if r.condition == "lr"] == [0.148, 0.15, 0.152]
    with pytest.raises(ValueError, match="'lr-1' and 'lr-3' of the grid are identical"):
        check_grid([RunSpec("lr-1", "lr", {"lr": 0.1}), RunSpec("lr-2", "lr", {"lr": 0.2}),
                    RunSpec("lr-3", "lr", {"lr": 0.1})])
    with pytest.raises(ValueError, match="distinct learning-rate factors"):
        paper_grid(repeats=5, lr_factors=(1.48, 1.5, 1.52))


def test_recipe_grid_runs_the_nondeterministic_condition(tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
    import run_grid

    cfg = Path(__file__).resolve().parents[1] / "recipes" / "configs" / "cifar10.yaml"
    assert run_grid.main([str(cfg), "--out", str(tmp_path / "g"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("--trainer.deterministic false --trainer.benchmark true") == 5
    assert "--model.lr 0.149" in out and "--model.lr 0.151" in out
    cond = json.loads((tmp_path / "g" / "conditions.json").read_text())
    assert cond["comparison_epoch"] > 0 and cond["conditions"]["nondet-1"] == "cuda non-determinism"


# ------------------------------------------------------------------------------------------ live == post-hoc
SETUPS = {
    "default partial sanity check": ({"num_sanity_val_steps": 2}, False),
    "complete sanity check": ({"num_sanity_val_steps": -1}, False),
    "validate_before_fit": ({"num_sanity_val_steps": 0}, True),
    "check_val_every_n_epoch": ({"num_sanity_val_steps": -1, "check_val_every_n_epoch": 2, "max_epochs": 4}, False),
    "val_check_interval": ({"num_sanity_val_steps": 0, "val_check_interval": 0.5}, False),
    "limit_val_batches": ({"num_sanity_val_steps": -1, "limit_val_batches": 0.5}, False),
}


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_live_scalars_equal_the_analysis_of_the_store(setup, tmp_path):
    kw, before = SETUPS[setup]
    pl.seed_everything(0)
    train, val = digits_loaders()
    rec = DecisionRecorder(tmp_path / "ddd", run_name="run")
    opts = {"max_epochs": 3, **kw}
    t = trainer(tmp_path, [rec], **opts)
    model = DigitsClassifier(lr=0.05)
    if before:
        validate_before_fit(t, model, dataloaders=val)
    t.fit(model, train, val)
    s = DecisionStore(rec.store_path)
    flags = s.rows("val")["flags"]
    correct, evaluated = s.read("val", "correct"), s.read("val", "evaluated")
    burn = 1 if flags[0] & 1 else 0
    assert bool(burn) == (setup not in ("default partial sanity check", "val_check_interval"))
    traj = load_trajectory(rec.store_path)  # the analysis with its defaults (burn-in from the rows' flags)
    assert traj.burn_in == burn
    d = summarize_dynamics(traj.correct, traj.evaluated, pred=traj.pred, burn_in=traj.burn_in)
    # the same numbers in numpy, from the store: categories over evaluated rows from the burn-in on
    c, ev = correct[burn:], evaluated[burn:]
    seen = ev.any(0)
    always = seen & ~(ev & ~c).any(0)
    never = seen & ~(ev & c).any(0)
    logged = {k: float(v) for k, v in t.callback_metrics.items() if k.startswith("ddd/val/")}
    assert logged["ddd/val/always_learned"] == pytest.approx(always.sum() / seen.sum(), abs=1e-6)
    assert logged["ddd/val/never_learned"] == pytest.approx(never.sum() / seen.sum(), abs=1e-6)
    assert logged["ddd/val/always_learned"] == pytest.approx(d.rows.always_learned[-1], abs=1e-6)
    assert logged["ddd/val/flip_flopping"] == pytest.approx(d.rows.flip_flopping[-1], abs=1e-6)
    assert logged["ddd/val/accuracy"] == pytest.approx(c[-1][ev[-1]].mean(), abs=1e-6)
    if len(correct) > 1:
        both = evaluated[-1] & evaluated[-2]
        assert logged["ddd/val/kappa_prev"] == pytest.approx(np_kappa(correct[-1][both], correct[-2][both]), abs=1e-6)
        assert logged["ddd/val/forgotten"] == pytest.approx(np.sum(correct[-2] & ~correct[-1] & both), abs=1e-6)


def test_data_maps_come_from_training_presentations_when_recorded(tmp_path):
    train, val = digits_loaders()
    for name, record_train in (("with", True), ("without", False)):
        rec = DecisionRecorder(tmp_path / name, run_name=name, record_train=record_train)
        trainer(tmp_path, [rec], max_epochs=2).fit(DigitsClassifier(lr=0.05), train, val)
        out = tmp_path / f"rep-{name}"
        assert main(["report", str(rec.store_path), "--out", str(out), "--quiet"]) == 0
        s = json.loads((out / "summary.json").read_text())
        (fig,) = [f for f in s["figures"] if f["name"].startswith("data_map_")]
        page = html.unescape((out / "index.html").read_text())
        exported = tmp_path / f"export-{name}.csv"
        assert main(["export", str(rec.store_path), "--out", str(exported), "--quiet"]) == 0
        table = list(csv.DictReader(exported.open()))
        store = DecisionStore(rec.store_path)
        if record_train:
            assert "training presentations (split 'train'" in fig["caption"]
            assert s["per_sample_source"]["training_split"] == "train"
            assert s["samples_train_table"] == "samples_train.csv"
            assert "come from the base run's training presentations (split 'train')" in page
            assert [f for f in s["figures"] if f["name"].startswith("aum_")]
            # the peers' definitions, from the stored training rows: confidence and variability (Swayamdipta et
            # al.: mean and population std of the true-class probability over epochs), AUM (Pleiss et al.: mean
            # margin), forgetting events (Toneva et al.: correct -> wrong transitions)
            p_true = np.exp(-store.read("train", "loss").astype(np.float64))
            margin = store.read("train", "margin").astype(np.float64)
            c = store.read("train", "correct")
            want = {"confidence": p_true.mean(0), "variability": p_true.std(0), "aum": margin.mean(0),
                    "observed_forgetting_events": (c[:-1] & ~c[1:]).sum(0)}
            for rows in (list(csv.DictReader((out / "samples_train.csv").open())), table):  # export follows
                assert len(rows) == store.info("train").num_samples
                for col, values in want.items():
                    np.testing.assert_allclose([float(r[col]) for r in rows], values, rtol=1e-5, atol=1e-6)
        else:
            assert "validation rows" in fig["caption"] and "record_train=True" in fig["caption"]
            assert s["per_sample_source"]["training_split"] is None and "samples_train_table" not in s
            assert "recorded no training split" in page
            assert len(table) == store.info("val").num_samples
