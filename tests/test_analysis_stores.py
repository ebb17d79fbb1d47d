"""Analysis from real stores: loading, duplicates, mismatches, streaming, the live summaries, the paper's data."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PAPER_DATA
from helpers import digits_loaders, trainer

from lightning_ddd import DecisionRecorder, DecisionStore
from lightning_ddd.analysis import (
    count_correct,
    find_stores,
    load_runs,
    runs_at_row,
    stream_dynamics,
    summarize_dynamics,
)
from lightning_ddd.demo.models import DigitsClassifier


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stores")
    metrics = {}
    for seed in range(4):
        train, val = digits_loaders()
        t = trainer(folder, [DecisionRecorder(folder, run_name=f"seed{seed}")], max_epochs=3)
        t.fit(DigitsClassifier(arch="mlp", init_seed=seed, lr=0.02), train, val)
        metrics[f"seed{seed}"] = {k: float(v) for k, v in t.callback_metrics.items()}
    return folder, metrics


def test_live_summaries_equal_the_analysis_of_the_store(stores):
    folder, metrics = stores
    for name, logged in metrics.items():
        s = DecisionStore(folder / f"{name}.h5")
        d = summarize_dynamics(s.read("val", "correct"), s.read("val", "evaluated"), pred=s.read("val", "pred"))
        frac = d.category_fractions()
        assert logged["ddd/val/always_learned"] == pytest.approx(frac["always_learned"], abs=1e-6)
        assert logged["ddd/val/never_learned"] == pytest.approx(frac["never_learned"], abs=1e-6)
        assert logged["ddd/val/flip_flopping"] == pytest.approx(frac["flip_flopping"], abs=1e-6)
        assert logged["ddd/val/learned"] == d.rows.learned[-1]
        assert logged["ddd/val/forgotten"] == d.rows.forgotten[-1]
        assert logged["ddd/val/kappa_prev"] == pytest.approx(d.rows.kappa_prev[-1], abs=1e-6)
        assert logged["ddd/val/pred_changes"] == d.rows.pred_changes[-1]
        assert logged["ddd/val/accuracy"] == pytest.approx(d.rows.accuracy[-1], abs=1e-6)


def test_load_runs_from_dir_glob_and_files(stores):
    folder, _ = stores
    runs = load_runs(folder)
    assert [r.name for r in runs] == ["seed0", "seed1", "seed2", "seed3"]
    assert len(load_runs(str(folder / "seed[01].h5"))) == 2
    m = runs_at_row(runs)
    assert m.correct.shape == (4, 809) and list(m.epochs) == [3, 3, 3, 3]
    k = count_correct(m.correct, m.evaluated)
    assert k.min() >= 0 and k.max() <= 4
    assert list(runs_at_row(runs, epoch=1).rows) == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="no row at epoch 7"):
        runs_at_row(runs, epoch=7)
    with pytest.raises(FileNotFoundError, match="No file matches"):
        find_stores(str(folder / "nothing*.h5"))


def test_duplicates_are_dropped_with_a_warning(stores, tmp_path):
    folder, _ = stores
    shutil.copy(folder / "seed0.h5", tmp_path / "a.h5")
    shutil.copy(folder / "seed0.h5", tmp_path / "b.h5")
    shutil.copy(folder / "seed1.h5", tmp_path / "c.h5")
    with pytest.warns(UserWarning, match="duplicates run 'seed0'"):
        runs = load_runs(tmp_path)
    assert len(runs) == 2


def test_runs_of_different_datasets_are_refused(stores, tmp_path):
    folder, _ = stores
    train, val = digits_loaders(n_val=500)
    trainer(tmp_path, [DecisionRecorder(tmp_path, run_name="small")], max_epochs=1).fit(
        DigitsClassifier(), train, val)
    with pytest.raises(ValueError, match="different datasets: 809 vs 500 samples"):
        load_runs([folder / "seed0.h5", tmp_path / "small.h5"])


def test_streamed_dynamics_equal_in_memory(stores):
    folder, _ = stores
    path = folder / "seed2.h5"
    s = DecisionStore(path)
    whole = summarize_dynamics(s.read("val", "correct"), s.read("val", "evaluated"), pred=s.read("val", "pred"),
                               prob=s.read("val", "prob"), margin=s.read("val", "margin"))
    streamed = stream_dynamics(path)
    for name in ("category", "first_learned", "forgetting_events", "confidence", "variability", "aum"):
        np.testing.assert_allclose(getattr(streamed, name), getattr(whole, name))


@pytest.mark.skipif(not (PAPER_DATA / "sota11_mean_decisions_correct.npy").exists(), reason="paper data absent")
def test_paper_numbers_from_published_arrays():
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "paper_sota_ddd.py"
    sys.path.insert(0, str(recipe.parent))
    import paper_sota_ddd

    out = paper_sota_ddd.analyse(str(PAPER_DATA / "sota11_mean_decisions_correct.npy"), 11,
                                 str(PAPER_DATA / "imagenet_val_label_errors.npy"))
    assert out["all_but_one"]["counts"] == {"trivial": 23000, "in_between": 21248, "impossible": 5752}
    pc = out["strict"]["percent"]
    assert (round(pc["trivial"], 3), round(pc["impossible"], 3), round(pc["in_between"], 3)) == (31.838, 7.044, 61.118)
    assert out["mean_accuracy"] == pytest.approx(0.6893, abs=5e-5)
    assert out["binomial_reference"][-1] == pytest.approx(0.6893**11, rel=1e-3)  # "about 1.7 %" all correct
    assert 0.30 < out["all_but_one"]["label_errors"]["share_within"]["impossible"] < 0.36  # "about a third"
    assert out["all_but_one"]["label_errors"]["total"] == 2916
    cli = subprocess.run([sys.executable, str(recipe), str(PAPER_DATA / "sota11_mean_decisions_correct.npy")],
                         capture_output=True, text=True, check=True)
    assert "trivial 46.000 %  impossible 11.504 %  in-between 42.496 %" in cli.stdout
