"""The study in a real browser (issue 16.6): jsPsych installed from the npm registry, Debian's chromium driven
by Playwright, scripted observers answering by keyboard and by click.

An observer who always picks the impossible image scores 100 %; a random one scores within its binomial
interval of 50 %; the error consistency of two scripted observers equals scikit-learn's kappa; a reload in the
middle resumes without losing or repeating an answer; with jsPsych local the page makes no network request;
the CDN tags carry the integrity hashes of exactly the files npm installs."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from browser import browser_page, need_browser
from sklearn.metrics import cohen_kappa_score
from synthetic_stores import write_store
from typed_json import check

from lightning_ddd.cli import main
from lightning_ddd.study import jspsych
from lightning_ddd.study.documents import Design, StudySummary
from lightning_ddd.study.score import read_results


@pytest.fixture(scope="module")
def npm_jspsych(tmp_path_factory):
    need_browser()
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("LIGHTNING_DDD_REQUIRE_BROWSER") == "1":
            pytest.fail("npm is needed to install jsPsych (apt-get install -y npm)")
        pytest.skip("npm is needed to install jsPsych")
    folder = tmp_path_factory.mktemp("jspsych")
    cmd = jspsych.npm_install_command().replace("DIR", str(folder)).split()
    proc = subprocess.run([npm, *cmd[1:], "--no-audit", "--no-fund", "--silent"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return folder


@pytest.fixture(scope="module")
def study(tmp_path_factory, npm_jspsych):
    tmp = tmp_path_factory.mktemp("study")
    stores = tmp / "stores"
    stores.mkdir()
    rng = np.random.default_rng(0)
    u = rng.random(300)
    ease = np.where(u < 0.45, 1.5, np.where(u < 0.9, -0.5, 0.5))  # mostly trivial or impossible, some in-between
    for i, name in enumerate(["a", "b", "c"]):
        write_store(stores / f"{name}.h5", name, i, n=300, thumbnails=True, difficulty=ease)
    out = tmp / "study"
    assert main(["study", "make", str(stores), "--out", str(out), "--trials", "24", "--practice", "2",
                 "--break-every", "10", "--jspsych", str(npm_jspsych)]) == 0
    design = json.loads((out / "design.json").read_text())
    return {"dir": out, "design": design, "tmp": tmp, "stores": stores, "npm": npm_jspsych}


def test_cdn_integrity_hashes_are_those_of_the_npm_files(npm_jspsych):
    for a in jspsych.ASSETS:
        data = (npm_jspsych / "node_modules" / a.package / a.path).read_bytes()
        assert a.integrity == "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode(), a.package
        assert a.url.startswith("https://cdn.jsdelivr.net/npm/") and f"@{a.version}/" in a.url


def run_observer(w, study, participant, choose, *, stop_after=None, url_id=True):  # noqa: C901
    """Answer the study as a scripted observer; ``choose(trial_on_screen, n) -> ("key"|"click", "left"|"right")``.

    Returns the downloaded results file (None when stopped early) and the answers given, by trial number."""
    page = w.page
    url = (study["dir"] / "index.html").as_uri() + (f"?participant={participant}" if url_id else "")
    if stop_after is not None or page.url in ("about:blank", ""):
        page.goto(url)
    given, n, download = {}, 0, None
    trials = {(t["left"], t["right"]): t for t in study["design"]["trials"]}
    while True:
        page.wait_for_selector("#jspsych-content button, #jspsych-content input[type=submit], "
                               "#jspsych-instructions-next", timeout=10_000)
        if page.locator(".ddd-choice").count() == 2:
            left = int(page.locator(".ddd-choice img").nth(0).get_attribute("data-id"))
            right = int(page.locator(".ddd-choice img").nth(1).get_attribute("data-id"))
            t = trials[(left, right)]
            how, side = choose(t, n)
            given[t["trial"]] = side
            last = len(given) == len(trials) or t["trial"] == study["design"]["trials"][-1]["trial"]

            def act(how=how, side=side):
                if how == "key":
                    page.keyboard.press({"left": "f", "right": "j"}[side] if n % 2 else
                                        {"left": "ArrowLeft", "right": "ArrowRight"}[side])
                else:
                    page.locator(f".ddd-choice[data-side='{side}']").click()

            if last:
                with page.expect_download() as d:
                    act()
                download = study["tmp"] / f"download-{participant}.csv"
                d.value.save_as(download)
            else:
                act()
            page.wait_for_function("n => !document.querySelector(`.ddd-choice img[data-id='${n}']`)", arg=left)
            n += 1
            if stop_after is not None and n >= stop_after:
                return None, given
            continue
        if page.locator("#jspsych-survey-text-next").count():
            page.fill("#jspsych-content input[type=text]", participant)
            page.click("#jspsych-survey-text-next")
            continue
        if page.locator("#jspsych-instructions-next").count():
            page.click("#jspsych-instructions-next")
            continue
        if "Thank you" in page.inner_text("#jspsych-content"):
            return download, given
        page.locator("#jspsych-content button").first.click()


def _correct(rows):
    return {r["pair_id"]: bool(r["correct"]) for r in rows if r.get("task") == "2afc" and not r["practice"]}


def test_scripted_observers_score_as_they_answer(study):
    tmp = study["tmp"]
    rngs = [np.random.default_rng(11), np.random.default_rng(12)]
    files = []
    with browser_page() as w:
        path, _ = run_observer(w, study, "oracle", lambda t, n: ("key" if n % 3 else "click",
                                                                  "left" if t["trivial_side"] == "right" else "right"))
        assert w.errors == [] and w.network() == []  # jsPsych local: nothing from the network
        files.append(path)
    for i, rng in enumerate(rngs):
        with browser_page() as w:
            path, _ = run_observer(w, study, f"random{i}", lambda t, n, rng=rng: (
                "key" if rng.random() < 0.5 else "click", "left" if rng.random() < 0.5 else "right"))
            assert w.errors == []
            files.append(path)
    kept = files
    rows = [read_results(f) for f in kept]
    for r in rows:  # one row per trial, in jsPsych's CSV with the study's columns
        trials = [x for x in r if x.get("task") == "2afc"]
        assert sorted(x["trial_number"] for x in trials) == list(range(26))
        assert {"pair_id", "left_id", "right_id", "trivial_side", "response", "correct", "rt", "trial_index",
                "participant", "response_source"} <= set(trials[0])
        assert {x["response_source"] for x in trials} == {"key", "click"}
    out = tmp / "scored"
    assert main(["study", "score", *map(str, kept), "--study", str(study["dir"]), "--out", str(out),
                 "--bootstrap", "100"]) == 0
    s = json.loads((out / "summary.json").read_text())["score"]
    obs = {o["participant"]: o for o in s["observers"]}
    assert obs["oracle"]["accuracy"] == 1.0 and obs["oracle"]["trials"] == 24
    for who in ("random0", "random1"):
        assert obs[who]["ci_low"] <= 0.5 <= obs[who]["ci_high"]
    with browser_page() as w:  # the results page
        w.page.goto((out / "index.html").as_uri())
        assert w.errors == [] and w.network() == []
        assert w.page.eval_on_selector_all("img", "els => els.filter(e => !e.naturalWidth).length") == 0
        body = w.page.inner_text("body")
        assert "oracle" in body and "100.0 %" in body  # the oracle's accuracy, as the page formats shares
    a, b = _correct(rows[1]), _correct(rows[2])
    pairs = sorted(a)
    ref = cohen_kappa_score([a[p] for p in pairs], [b[p] for p in pairs])
    ec = s["error_consistency"]
    assert ec["kappa"][ec["observers"].index("random0")][ec["observers"].index("random1")] == pytest.approx(ref)


def test_a_reload_resumes_without_losing_or_repeating_answers(study):
    pick = lambda t, n: ("click", "left" if (t["trial"] * 7) % 3 else "right")  # noqa: E731
    with browser_page() as w:
        _, before = run_observer(w, study, "reloader", pick, stop_after=9)
        w.page.reload()  # no participant in the URL after the reload: the unfinished one resumes
        w.page.goto((study["dir"] / "index.html").as_uri())
        path, after = run_observer(w, study, "reloader", pick, url_id=False)
        assert w.errors == []
    assert not set(before) & set(after)  # nothing asked twice
    rows = [r for r in read_results(path) if r.get("task") == "2afc"]
    assert sorted(r["trial_number"] for r in rows) == list(range(26))
    for r in rows:
        assert r["response_side"] == {**before, **after}[r["trial_number"]]
        assert r["participant"] == "reloader"


def test_ratings_experiment_in_the_browser(study, tmp_path):
    out = tmp_path / "ratings"
    assert main(["study", "make", str(study["stores"]), "--out", str(out), "--experiment", "ratings",
                 "--per-class", "3", "--jspsych", str(study["npm"])]) == 0
    assert "jspsych/jspsych/index.browser.min.js" in (out / "index.html").read_text()  # local copies, no CDN
    design = json.loads((out / "design.json").read_text())
    answers = {}
    with browser_page() as w:
        p = w.page
        p.goto((out / "index.html").as_uri() + "?participant=rater")
        download = None
        for _ in range(200):
            p.wait_for_selector("#jspsych-content button, #jspsych-content input[type=submit], "
                                "#jspsych-instructions-next")
            if p.locator("input[name=categories]").count():
                sid = int(p.locator("img.ddd-image").get_attribute("data-id"))
                n = sid % 4
                answers[sid] = n
                p.fill("input[name=categories]", str(n))
                p.check(f"input[name=main_category][value={['no', 'maybe', 'yes'][sid % 3]}]")
                p.check(f"input[name=odd][value={['no', 'slightly', 'very'][sid % 3]}]")
                if len(answers) == len(design["trials"]):
                    with p.expect_download() as d:
                        p.click("#jspsych-survey-html-form-next")
                    download = tmp_path / "rater.csv"
                    d.value.save_as(download)
                else:
                    p.click("#jspsych-survey-html-form-next")
                p.wait_for_function("n => !document.querySelector(`img.ddd-image[data-id='${n}']`)", arg=sid)
                continue
            if p.locator("#jspsych-instructions-next").count():
                p.click("#jspsych-instructions-next")
                continue
            if "Thank you" in p.inner_text("#jspsych-content"):
                break
            p.locator("#jspsych-content button").first.click()
        assert w.errors == [] and w.network() == []
    assert download is not None
    assert main(["study", "score", str(tmp_path / "rater.csv"), "--study", str(out), "--out",
                 str(tmp_path / "scored")]) == 0
    whole = json.loads((tmp_path / "scored" / "summary.json").read_text())
    assert check(whole, StudySummary) == [] and check(design, Design) == []  # the documents' types
    s = whole["score"]
    kind = {t["sample_id"]: t["difficulty"] for t in design["trials"]}
    for option in ("0", "1", "2", "3"):
        ids = [i for i, n in answers.items() if n == int(option)]
        got = s["counts"]["categories"][option]
        assert sum(got.values()) == len(ids)
        for d in ("trivial", "in_between", "impossible"):
            assert got[d] == sum(kind[i] == d for i in ids)



def _greyness(png: bytes) -> float:
    """How noisy an image looks on screen: the share of its screenshot's pixels that are neither background nor
    stroke (mid-grey, between 20 % and 80 % of its range). A clean digit is dark background and bright strokes;
    pixel noise turns both into grey speckle."""
    import io

    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(png), format="png")[..., :3].mean(axis=-1)
    z = (img - img.min()) / max(float(img.max() - img.min()), 1e-9)
    return float(((z > 0.2) & (z < 0.8)).mean())


def test_an_observer_who_picks_the_noisier_image_beats_chance_on_the_demo(npm_jspsych, tmp_path):
    """Issue 25.5: the demo's images carry per-image noise, so difficulty is visible. A scripted observer that
    sees only the two images as the browser draws them (element screenshots) and calls the noisier one the one
    the networks got wrong scores well above chance on the demo's own study."""
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo"), "--quiet", "--no-report"]) == 0
    out = tmp_path / "study"
    assert main(["study", "make", str(tmp_path / "demo" / "stores"), "--out", str(out), "--trials", "40",
                 "--practice", "2", "--break-every", "100", "--jspsych", str(npm_jspsych)]) == 0
    study = {"dir": out, "design": json.loads((out / "design.json").read_text()), "tmp": tmp_path}
    with browser_page() as w:
        def noisier(t, n):
            shots = [_greyness(w.page.locator(f".ddd-choice[data-side='{side}'] img").screenshot())
                     for side in ("left", "right")]
            return "click", ("left", "right")[int(np.argmax(shots))]

        path, _ = run_observer(w, study, "looker", noisier)
        assert w.errors == [] and w.network() == []
    assert main(["study", "score", str(path), "--study", str(out), "--out", str(tmp_path / "scored"),
                 "--bootstrap", "50"]) == 0
    (obs,) = json.loads((tmp_path / "scored" / "summary.json").read_text())["score"]["observers"]
    assert obs["trials"] == 40 and obs["ci_low"] > 0.5, obs  # the Wilson interval excludes chance
