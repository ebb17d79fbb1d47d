"""The one typed comparison: its numbers against independent code, its JSON against the documented schema."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from lightning_ddd.analysis.comparison import CompareOptions, compare_runs
from lightning_ddd.report.build import ReportOptions, build_report
from lightning_ddd.report.summary import SCHEMA, summarize, to_json
from lightning_ddd.report.summary_types import Summary
from lightning_ddd.store import DecisionStore
from tests.synthetic_stores import write_runs
from tests.typed_json import check

NAMES = ["base", "init-1", "init-2", "lr-1", "lr-2", "half-a", "half-b"]
CONDITIONS = {"base": "base", "init-1": "init", "init-2": "init", "lr-1": "lr", "lr-2": "lr", "half-a": "half data",
              "half-b": "half data"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return write_runs(tmp_path_factory.mktemp("cmp") / "stores", NAMES, n=240, epochs=4)


def _at_last(folder):
    return {n: DecisionStore(folder / f"{n}.h5").read("val", "correct")[-1] for n in NAMES}


def test_the_comparison_equals_independent_code(runs):
    c = compare_runs([str(runs)], CompareOptions(conditions=CONDITIONS, n_boot=20, null_draws=50))
    correct = _at_last(runs)
    names = list(c.names)
    assert sorted(names) == sorted(NAMES) and c.comparison_epoch == 4.0 and c.kind == "training runs"
    k = np.sum([correct[n] for n in NAMES], axis=0)
    assert c.reference is not None and c.reference.own
    np.testing.assert_array_equal(c.reference.k, k)
    assert c.difficulty is not None and c.all_but_one is not None
    assert c.difficulty.counts == {"trivial": int((k == 7).sum()), "in_between": int(((k > 0) & (k < 7)).sum()),
                                   "impossible": int((k == 0).sum())}
    assert c.all_but_one.counts["trivial"] == int((k >= 6).sum()) and c.all_but_one.counts["impossible"] == int(
        (k <= 1).sum())
    mid = (k > 0) & (k < 7)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j:
                want = cohen_kappa_score(correct[a], correct[b])
                assert c.consistency["all"].kappa[i, j] == pytest.approx(want, abs=1e-12)
                want_mid = cohen_kappa_score(correct[a][mid], correct[b][mid])
                assert c.consistency["in_between"].kappa[i, j] == pytest.approx(want_mid, abs=1e-12)
    dd = c.different_data
    assert dd is not None and dd.runs == ("half-a", "half-b")
    assert dd.kappa["all"] == pytest.approx(cohen_kappa_score(correct["half-a"], correct["half-b"]), abs=1e-12)
    assert c.conditions is not None and c.conditions.labels == tuple(CONDITIONS[n] for n in names)
    # detailed runs: probabilities and margins are the store's own, for exactly the compared rows
    for r in c.detailed_runs():
        store = DecisionStore(runs / f"{r.name}.h5")
        assert r.detail is not None and r.detail.trajectory.prob is not None
        rows = len(r.trajectory.epochs)
        np.testing.assert_allclose(r.detail.trajectory.prob, np.exp(-store.read("val", "loss")[:rows]), rtol=1e-6)
        np.testing.assert_array_equal(r.detail.trajectory.margin, store.read("val", "margin")[:rows])
        np.testing.assert_array_equal(r.detail.trajectory.correct, store.read("val", "correct")[:rows])
        conf = np.exp(-store.read("val", "loss")[1:rows]).mean(axis=0)  # burn-in: the untrained row
        np.testing.assert_allclose(r.dynamics.confidence, conf, rtol=1e-6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.base = "lr-1"  # type: ignore[misc]


def test_different_data_is_found_by_the_condition_name_given_and_only_by_it(runs):
    renamed = {n: ("halves" if c == "half data" else c) for n, c in CONDITIONS.items()}
    quick = {"n_boot": 0, "null_draws": 0, "significance": False}
    assert compare_runs([str(runs)], CompareOptions(conditions=renamed, **quick)).different_data is None
    found = compare_runs([str(runs)], CompareOptions(conditions=renamed, different_data="halves", **quick))
    assert found.different_data is not None and found.different_data.condition == "halves"
    off = compare_runs([str(runs)], CompareOptions(conditions=CONDITIONS, different_data=None, **quick))
    assert off.different_data is None


def test_summary_json_holds_only_documented_keys(runs, tmp_path):
    c = compare_runs([str(runs)], CompareOptions(conditions=CONDITIONS, n_boot=20, null_draws=50))
    s = to_json(summarize(c))
    json.dumps(s, allow_nan=False)
    assert set(s) <= set(SCHEMA), set(s) - set(SCHEMA)
    written = build_report([str(runs)], tmp_path / "rep", ReportOptions(conditions=CONDITIONS, n_boot=20,
                                                                        null_draws=50, explorer=True))
    on_disk = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert on_disk == written
    assert set(on_disk) <= set(SCHEMA), set(on_disk) - set(SCHEMA)
    # the report's numbers are the comparison's numbers, not a second computation
    assert on_disk["consistency"] == s["consistency"] and on_disk["difficulty"] == s["difficulty"]
    for key in ("difficulty", "all_but_one", "consistency", "significance", "conditions", "condition_differences",
                "to_base", "different_data", "galleries", "explorer", "figures", "samples_table"):
        assert key in on_disk, key
    # the documented keys are the typed ones, and the written document holds to its types at every depth
    assert set(SCHEMA) == set(Summary.__annotations__)
    assert check(on_disk, Summary) == []
    assert check({**on_disk, "n_runs": "7"}, Summary) and check({"difficulty": {"fractions": []}}, Summary)


def test_figures_never_touch_pyplot_or_the_backend(runs, tmp_path):
    """Issue 22.5: the report draws on matplotlib.figure.Figure; building one leaves the process's backend as it
    was and never imports pyplot (a user's interactive session keeps its own backend)."""
    import subprocess
    import sys

    # read the rc value without resolving it (matplotlib.get_backend() itself would import pyplot)
    code = ("import sys, matplotlib; get = lambda: dict.__getitem__(matplotlib.rcParams, 'backend'); "
            "before = get(); "
            "from lightning_ddd.report.build import ReportOptions, build_report; "
            f"build_report([{str(runs)!r}], {str(tmp_path / 'rep')!r}, ReportOptions(n_boot=5, null_draws=5)); "
            "assert get() == before, (before, get()); "
            "assert 'matplotlib.pyplot' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
    assert (tmp_path / "rep" / "figures" / "k_histogram.png").stat().st_size > 1000


def test_scores_are_read_for_exactly_the_loaded_rows_of_a_store_still_recording(tmp_path):
    """Issue 22.1: a detailed run's probabilities and margins are read once more, for the rows already loaded;
    a row appended meanwhile (a run still recording) stays out, and a store without margins has none."""
    from lightning_ddd.analysis.loading import load_trajectory, with_scores
    from lightning_ddd.store import RowFlag, StoreWriter
    from lightning_ddd.store.row import Row
    from tests.synthetic_stores import write_store

    path = write_store(tmp_path / "live.h5", "live", 0, n=50, epochs=2)
    t = load_trajectory(path, fields=())
    assert t.prob is None and t.margin is None and len(t.epochs) == 3
    w = StoreWriter(path, run_name="live", run_id="id-live-0")
    w.open()
    n = 50
    targets = DecisionStore(path).targets("val")
    w.append(Row("val", 30, 3.0, RowFlag.NONE, 5, np.ones(n, bool), np.ones(n, bool), targets, targets,
                 loss=np.full(n, 0.01, np.float32), margin=np.full(n, 5.0, np.float32)))
    scored = with_scores(t, "val")
    store = DecisionStore(path)
    assert store.info("val").num_rows == 4 and scored.prob.shape == (3, n)
    np.testing.assert_allclose(scored.prob, np.exp(-store.read("val", "loss")[:3]), rtol=1e-6)
    np.testing.assert_array_equal(scored.margin, store.read("val", "margin")[:3])
    assert scored.correct is t.correct  # nothing loaded before is read again
    plain = StoreWriter(tmp_path / "plain.h5", run_name="plain", run_id="id-plain")  # record_margin=False
    plain.open()
    for step in (0, 10):
        plain.append(Row("val", step, step / 10, RowFlag.NONE, 5, np.ones(n, bool), np.ones(n, bool), targets,
                         targets, loss=np.full(n, 0.5, np.float32)))
    no_margin = with_scores(load_trajectory(tmp_path / "plain.h5", fields=()), "val")
    assert no_margin.margin is None and no_margin.prob is not None and no_margin.prob.shape == (2, n)
