"""The human study kit without a browser (issue 16): the design's rules, the statistics against scipy and
scikit-learn, scoring of written results, and one clear line for every kind of bad input."""

from __future__ import annotations

import csv
import html
import json

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score
from synthetic_stores import write_store
from typed_json import check

from lightning_ddd.analysis.difficulty import Difficulty
from lightning_ddd.cli import main
from lightning_ddd.study.design import DesignError, Pool, rating_trials, two_afc_trials
from lightning_ddd.study.documents import Design, StudySummary
from lightning_ddd.study.score import binomial_p_value, wilson_interval


def _pool(n=600, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.choice([Difficulty.TRIVIAL, Difficulty.IN_BETWEEN, Difficulty.IMPOSSIBLE], n, p=[0.4, 0.3, 0.3])
    return Pool(labels=labels, score=rng.integers(0, 50, n).astype(float), usable=rng.random(n) < 0.95)


@pytest.mark.parametrize("n_trials", [149, 20])
def test_2afc_design_pairs_extreme_samples_with_balanced_sides(n_trials):
    pool = _pool()
    trials = two_afc_trials(pool, n_trials, 4, seed=3, selection="extreme")
    assert trials == two_afc_trials(pool, n_trials, 4, seed=3, selection="extreme")
    assert [t["trial"] for t in trials] == list(range(n_trials + 4))
    assert [t["practice"] for t in trials] == [True] * 4 + [False] * n_trials
    main_ = [t for t in trials if not t["practice"]]
    lefts = sum(t["trivial_side"] == "left" for t in main_)
    assert lefts in (n_trials // 2, (n_trials + 1) // 2)
    for t in trials:
        assert pool.labels[t["trivial"]] == Difficulty.TRIVIAL and pool.labels[t["impossible"]] == Difficulty.IMPOSSIBLE
        assert pool.usable[t["trivial"]] and pool.usable[t["impossible"]]
        side = {"left": t["left"], "right": t["right"]}
        assert side[t["trivial_side"]] == t["trivial"] and t["impossible"] in (t["left"], t["right"])
    used = [t["trivial"] for t in trials] + [t["impossible"] for t in trials]
    assert len(set(used)) == len(used)
    # the most extreme: no unused trivial sample was right more often than a used main one
    triv = pool.ids(Difficulty.TRIVIAL)
    main_triv = {t["trivial"] for t in main_}
    assert pool.score[list(main_triv)].min() >= pool.score[np.setdiff1d(triv, used)].max()
    imp = pool.ids(Difficulty.IMPOSSIBLE)
    main_imp = {t["impossible"] for t in main_}
    assert pool.score[list(main_imp)].max() <= pool.score[np.setdiff1d(imp, used)].min()
    # the order is random: not sorted by pair
    assert [t["pair_id"] for t in main_] != sorted(t["pair_id"] for t in main_)


def test_the_default_selection_is_the_papers_uniform_draw_within_the_strict_classes():
    """The paper drew its pairs at random among the strict trivial and impossible images of the last epoch: every
    such sample is equally likely, whatever its score over the rows (a chi-square test of uniformity over many
    seeds), and the draw is the galleries' seeded permutation."""
    pool = _pool()
    triv, imp = pool.ids(Difficulty.TRIVIAL), pool.ids(Difficulty.IMPOSSIBLE)
    counts = {int(i): 0 for i in triv}
    seeds = 400
    for seed in range(seeds):
        trials = two_afc_trials(pool, 20, 0, seed=seed)
        for t in trials:
            counts[t["trivial"]] += 1
            assert t["impossible"] in imp
        rng = np.random.default_rng(seed)
        assert sorted(t["trivial"] for t in trials) == sorted(triv[rng.permutation(triv.size)][:20].tolist())
    observed = np.array(list(counts.values()))
    assert stats.chisquare(observed).pvalue > 1e-3  # uniform over the strict class
    # not the extreme rule: low-score trivial samples are drawn as often as high-score ones
    lo = pool.score[triv] < np.median(pool.score[triv])
    assert abs(observed[lo].mean() - observed[~lo].mean()) < 0.25 * observed.mean()


def test_rating_design_and_too_few_samples():
    pool = _pool()
    trials = rating_trials(pool, 30, seed=1)
    kinds = [t["difficulty"] for t in trials]
    assert sorted(set(kinds)) == ["impossible", "in_between", "trivial"]
    assert all(kinds.count(k) == 30 for k in set(kinds))
    with pytest.raises(DesignError, match="trivial samples with images are available, but the study needs 1004"):
        two_afc_trials(pool, 1000, 4)


@pytest.mark.parametrize("k,n", [(0, 10), (7, 10), (120, 149), (75, 149), (149, 149), (3, 4)])
def test_binomial_statistics_equal_scipy(k, n):
    ref = stats.binomtest(k, n, 0.5)
    assert binomial_p_value(k, n) == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
    ci = ref.proportion_ci(0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


# ------------------------------------------------------------------ scoring written results
@pytest.fixture()
def study(tmp_path):
    stores = tmp_path / "stores"
    stores.mkdir()
    rng = np.random.default_rng(0)
    ease = np.where(rng.random(400) < 0.5, 1.5, -0.5)  # many trivial and impossible samples
    for i, name in enumerate(["a", "b", "c", "d"]):
        write_store(stores / f"{name}.h5", name, i, n=400, thumbnails=True, difficulty=ease)
    out = tmp_path / "study"
    assert main(["study", "make", str(stores), "--out", str(out), "--trials", "30", "--practice", "2",
                 "--seed", "5"]) == 0
    return {"dir": out, "design": json.loads((out / "design.json").read_text()), "tmp": tmp_path}


def _results(study, who, choose, path, fmt="csv"):
    """A results file as the study page writes it (jsPsych's CSV or JSON), one row per trial."""
    d = study["design"]
    rows = []
    for t in d["trials"]:
        response = choose(t)
        side = "left" if response == 0 else "right"
        rows.append({"task": "2afc", "study_id": d["study_id"], "trial_number": t["trial"], "pair_id": t["pair_id"],
                     "practice": t["practice"], "left_id": t["left"], "right_id": t["right"],
                     "trivial_side": t["trivial_side"], "rt": 800, "response": response, "participant": who,
                     "response_side": side, "correct": side != t["trivial_side"], "trial_type": "html-button-response"})
    if fmt == "json":
        path.write_text(json.dumps(rows))
    else:
        _write_csv(path, [{k: (str(v).lower() if isinstance(v, bool) else v) for k, v in r.items()} for r in rows])
    return rows


def _write_csv(path, rows):
    """Rows as jsPsych writes its CSV: a header, every value quoted."""
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), quoting=csv.QUOTE_ALL)
        w.writeheader()
        w.writerows(rows)


def test_scores_equal_independent_references(study):
    tmp = study["tmp"]
    rngs = {"p1": np.random.default_rng(1), "p2": np.random.default_rng(2)}
    r1 = _results(study, "p1", lambda t: int(rngs["p1"].random() < 0.5), tmp / "p1.csv")
    r2 = _results(study, "p2", lambda t: int(rngs["p2"].random() < 0.5), tmp / "p2.json", fmt="json")
    _results(study, "p3", lambda t: 0 if t["trivial_side"] == "right" else 1, tmp / "p3.csv")
    out = tmp / "scored"
    assert main(["study", "score", str(tmp / "p1.csv"), str(tmp / "p2.json"), str(tmp / "p3.csv"),
                 "--study", str(study["dir"]), "--out", str(out), "--bootstrap", "100"]) == 0
    whole = json.loads((out / "summary.json").read_text())
    assert check(whole, StudySummary) == [] and check(study["design"], Design) == []  # the documents' types
    s = whole["score"]
    obs = {o["participant"]: o for o in s["observers"]}
    assert obs["p3"]["accuracy"] == 1.0 and obs["p3"]["trials"] == 30
    for who, rows in (("p1", r1), ("p2", r2)):
        c = [r["correct"] for r in rows if not r["practice"]]
        assert obs[who]["correct"] == sum(c)
        assert obs[who]["p_value"] == pytest.approx(stats.binomtest(sum(c), 30).pvalue)
    # error consistency between observers: scikit-learn's kappa on the correctness, aligned by pair
    by = {who: {r["pair_id"]: r["correct"] for r in rows if not r["practice"]}
          for who, rows in (("p1", r1), ("p2", r2))}
    pairs = sorted(by["p1"])
    ref = cohen_kappa_score([by["p1"][p] for p in pairs], [by["p2"][p] for p in pairs])
    ec = s["error_consistency"]
    i, j = ec["observers"].index("p1"), ec["observers"].index("p2")
    assert ec["kappa"][i][j] == pytest.approx(ref)
    assert s["mean_accuracy"] == pytest.approx(np.mean([o["accuracy"] for o in s["observers"]]))
    assert (out / "index.html").is_file() and (out / "figures" / "observers.png").is_file()


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("lightning-ddd: error: ")
    return err


def test_bad_results_get_one_clear_line_each(study, capsys):
    tmp, d = study["tmp"], study["design"]
    base = ["study", "score", "--study", str(study["dir"]), "--out", str(tmp / "scored")]
    _results(study, "p1", lambda t: 0, tmp / "p1.csv")
    # another study: its id differs; or the other experiment's results
    rows = list(csv.DictReader(open(tmp / "p1.csv")))
    _write_csv(tmp / "other.csv", [{**r, "study_id": "0123456789abcdef"} for r in rows])
    assert "comes from another study" in _one_line_error(capsys, [*base[:2], str(tmp / "other.csv"), *base[2:]])
    _write_csv(tmp / "ratings.csv", [{**r, "task": "ratings"} for r in rows])
    assert "comes from another study" in _one_line_error(capsys, [*base[:2], str(tmp / "ratings.csv"), *base[2:]])
    # pair ids this study does not have
    _write_csv(tmp / "pairs.csv", [{**r, "pair_id": "pair-999"} for r in rows])
    assert "which this study does not have" in _one_line_error(capsys, [*base[:2], str(tmp / "pairs.csv"), *base[2:]])
    # the same participant twice
    _results(study, "p1", lambda t: 1, tmp / "p1-again.json", fmt="json")
    err = _one_line_error(capsys, [*base[:2], str(tmp / "p1.csv"), str(tmp / "p1-again.json"), *base[2:]])
    assert "participant 'p1' appears in both" in err
    # truncated files: a CSV cut inside a row, a JSON cut anywhere
    text = (tmp / "p1.csv").read_text()
    (tmp / "cut.csv").write_text(text[: len(text) // 2])
    assert "truncated" in _one_line_error(capsys, [*base[:2], str(tmp / "cut.csv"), *base[2:]])
    text = (tmp / "p1-again.json").read_text()
    (tmp / "cut.json").write_text(text[: len(text) - 40])
    assert "truncated" in _one_line_error(capsys, [*base[:2], str(tmp / "cut.json"), *base[2:]])
    (tmp / "empty.csv").write_text("")
    assert "is empty" in _one_line_error(capsys, [*base[:2], str(tmp / "empty.csv"), *base[2:]])
    assert not (tmp / "scored").exists()  # nothing written on a refusal
    # too few trivial or impossible samples for the pairs asked for
    stores = tmp / "stores"
    err = _one_line_error(capsys, ["study", "make", str(stores), "--out", str(tmp / "big"), "--trials", "5000"])
    assert "samples with images are available, but the study needs 5004" in err
    assert d["study_id"]


def test_a_partial_observer_is_scored_with_a_note(study, capsys):
    tmp = study["tmp"]
    rows = _results(study, "p1", lambda t: 0, tmp / "p1.json", fmt="json")
    (tmp / "p1.json").write_text(json.dumps(rows[:20]))
    assert main(["study", "score", str(tmp / "p1.json"), "--study", str(study["dir"]), "--out",
                 str(tmp / "scored")]) == 0
    assert "answered 20 of 32 trials" in capsys.readouterr().err


def test_default_study_loads_pinned_jspsych_from_the_cdn_with_integrity(study):
    from lightning_ddd.study.jspsych import ASSETS

    page = (study["dir"] / "index.html").read_text()
    for a in ASSETS:
        assert f'"{a.url}" integrity="{a.integrity}" crossorigin="anonymous"' in page
    assert not (study["dir"] / "jspsych").exists()
    d = study["design"]
    assert all((study["dir"] / s["image"]).is_file() for s in d["samples"].values())
    assert (study["dir"] / "design.js").read_text().startswith("window.DDD_STUDY = ")


def test_the_papers_numbers_are_references_only_for_a_study_built_the_papers_way(study):
    tmp = study["tmp"]
    _results(study, "p1", lambda t: 0 if t["trivial_side"] == "right" else 1, tmp / "p1.csv")
    out = tmp / "scored-thumbs"
    assert main(["study", "score", str(tmp / "p1.csv"), "--study", str(study["dir"]), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert study["design"]["selection"] == "paper" and not study["design"]["paper_way"]  # thumbnails, not crops
    assert "paper" not in summary["score"] and any("not built the paper's way" in n for n in summary["notes"])
    page = html.unescape((out / "index.html").read_text())
    assert "the paper: 81.4" not in page and "the paper's rule" in page and "thumbnails" in page
    design = dict(study["design"], paper_way=True)  # as `study make --images DIR` with the defaults writes it
    (study["dir"] / "design.json").write_text(json.dumps(design))
    out = tmp / "scored-paper"
    assert main(["study", "score", str(tmp / "p1.csv"), "--study", str(study["dir"]), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["score"]["paper"]["mean_accuracy"] == 0.814 and "the paper: 81.4" in (out / "index.html").read_text()


def test_an_observer_who_stopped_after_the_practice_is_scored_as_far_as_answered(study, capsys):
    """The one-line result of `study score` when no main trial was answered: no accuracy to print, no crash."""
    tmp = study["tmp"]
    rows = _results(study, "quitter", lambda t: 0, tmp / "all.json", fmt="json")
    (tmp / "practice-only.json").write_text(json.dumps([r for r in rows if r["practice"]]))
    out = tmp / "scored-practice"
    capsys.readouterr()
    assert main(["study", "score", str(tmp / "practice-only.json"), "--study", str(study["dir"]), "--out",
                 str(out)]) == 0
    captured = capsys.readouterr()
    assert "1 observers: mean accuracy – (range –)" in captured.out
    assert "answered 2 of 32 trials" in captured.err
    s = json.loads((out / "summary.json").read_text())["score"]
    assert s["observers"][0]["trials"] == 0 and s["mean_accuracy"] is None
    page = (out / "index.html").read_text()
    assert "Mean accuracy <b>–</b>" in page and "<td>– – –</td>" in page and "nan" not in page.lower()
