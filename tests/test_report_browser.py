"""The report in a real browser (issue 14.6): Debian's chromium driven by Playwright.

The page loads without console errors or network requests; every section shows something; each gallery
image is the thumbnail of a sample the analysis puts in that group; the explorer filters and sorts to what
the analysis API computes, pages, jumps to a linked sample, and shows that sample's own thumbnail."""

from __future__ import annotations

import json
import re

import matplotlib.image as mpimg
import numpy as np
import pytest
from browser import browser_page, need_browser, non_blank
from synthetic_stores import sample_images, write_store

from lightning_ddd.analysis import load_trajectory, summarize_dynamics
from lightning_ddd.cli import main
from lightning_ddd.store import DecisionStore

NAMES = ["base", "lr-1", "lr-2", "init-1", "init-2"]
CLASSES = ["apple", "bee", "car", "dune", "elk"]
N = 240


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    need_browser()
    tmp = tmp_path_factory.mktemp("browser")
    stores = tmp / "stores"
    stores.mkdir()
    for i, name in enumerate(NAMES):  # thumbnails in one store only (not the base's): the report finds them
        write_store(stores / f"{name}.h5", name, i, n=N, thumbnails=name == "lr-1",
                    class_names=CLASSES if name == "lr-1" else None)
    out = tmp / "report"
    assert main(["report", str(stores), "--out", str(out), "--bootstrap", "50", "--null-draws", "200",
                 "--gallery-size", "8", "--quiet", "--base", "base"]) == 0
    # the analysis, independently: k at the comparison epoch (the last common one), the base run's dynamics
    correct = np.stack([DecisionStore(stores / f"{n}.h5").read("val", "correct")[-1] for n in NAMES])
    base = load_trajectory(stores / "base.h5", "val")
    d = summarize_dynamics(base.correct, base.evaluated, pred=base.pred, prob=base.prob, margin=base.margin,
                           burn_in=base.burn_in)
    return {"out": out, "k": correct.sum(axis=0), "d": d, "targets": base.targets, "images": sample_images(N)}


def _png_rgb(path) -> np.ndarray:
    img = mpimg.imread(path)
    return np.round(img[..., :3] * 255).astype(int) if img.dtype.kind == "f" else img[..., :3].astype(int)


def _open(w, report, anchor: str = "") -> None:
    w.page.goto((report["out"] / "index.html").as_uri() + anchor)
    w.page.wait_for_selector("#explorer-list tr[data-id]")


def _shown_ids(page) -> list[int]:
    ids = page.eval_on_selector_all("#explorer-list tr[data-id]", "els => els.map(e => e.dataset.id)")
    return [int(x) for x in ids]


def test_page_loads_offline_and_every_section_shows_something(report):
    with browser_page() as w:
        _open(w, report)
        w.page.wait_for_timeout(300)
        assert w.errors == []
        assert w.network() == []
        headings = w.page.eval_on_selector_all("section > h2", "els => els.map(e => e.textContent)")
        assert headings == ["Findings", "Key figures", "Galleries", "Sample explorer", "Runs", "Tables and statistics"]
        for section in ("findings", "key-figures", "galleries", "explorer", "runs", "statistics"):
            assert non_blank(w.page.locator(f"#{section}").screenshot()), section
        # every image the page shows has loaded (figures, gallery images, sprite sheets)
        broken = w.page.eval_on_selector_all("img", "els => els.filter(e => !e.complete || !e.naturalWidth).length")
        assert broken == 0
        # long pair tables are collapsed
        assert w.page.locator("details#pairs-all").get_attribute("open") is None


def test_gallery_images_are_the_samples_the_analysis_puts_in_each_group(report):
    k, d, out = report["k"], report["d"], report["out"]
    summary = json.loads((out / "summary.json").read_text())
    m = len(NAMES)
    rule = {"trivial": k == m, "impossible": k == 0, "in_between": (k > 0) & (k < m),
            "always_learned": d.category == 0, "never_learned": d.category == 1, "flip_flopping": d.category == 2}
    from lightning_ddd.analysis.dynamics import Category

    assert (Category.ALWAYS_LEARNED, Category.NEVER_LEARNED, Category.FLIP_FLOPPING) == (0, 1, 2)
    with browser_page() as w:
        _open(w, report)
        tiles = w.page.eval_on_selector_all(
            ".tile", "els => els.map(e => [e.dataset.group, Number(e.dataset.id), e.querySelector('img').src, "
                     "e.textContent])")
    assert {t[0] for t in tiles} == set(rule)
    for group, sid, src, text in tiles:
        assert rule[group][sid], f"sample {sid} is shown as {group}"
        shown = _png_rgb(src.removeprefix("file://"))
        np.testing.assert_array_equal(shown, report["images"][sid])  # its own thumbnail, from the lr-1 store
        assert CLASSES[report["targets"][sid]] in text and f"k {k[sid]} of {m}" in text
    flips = [t[1] for t in tiles if t[0] == "flip_flopping"]
    fe = d.forgetting_events
    assert [fe[i] for i in flips] == sorted(fe[d.category == 2], reverse=True)[:len(flips)]
    groups = {g["name"]: g for g in summary["galleries"]["groups"]}
    assert groups["trivial"]["total"] == int((k == m).sum())


def _expected(report, *, group=None, cls=None, key="id", desc=False) -> list[int]:
    k, d, targets = report["k"], report["d"], report["targets"]
    ids = np.arange(N)
    mask = np.ones(N, bool)
    if group == "impossible":
        mask &= k == 0
    if group == "flip_flopping":
        mask &= d.category == 2
    if cls is not None:
        mask &= targets == cls
    values = {"id": ids.astype(float), "k": k.astype(float), "confidence": d.confidence,
              "forgetting": np.where(d.category == 1, np.inf, d.forgetting_events.astype(float)), "aum": d.aum}[key]
    values = np.round(values, 4)  # the page carries 4 decimals
    sel = ids[mask]
    v = values[sel]
    missing = ~np.isfinite(v) & ~np.isinf(v)
    order = np.lexsort((sel, -v if desc else v, missing))  # missing last, then the key, then id
    return sel[order][:50].tolist()


@pytest.mark.parametrize("choice", [
    {"sort": ("forgetting", "desc"), "group": ("category:flip_flopping", "flip_flopping")},
    {"sort": ("k", "desc")},
    {"sort": ("confidence", "asc"), "cls": 2},
    {"sort": ("aum", "desc"), "group": ("difficulty:impossible", "impossible")},
])
def test_explorer_filters_and_sorts_as_the_analysis_computes(report, choice):
    with browser_page() as w:
        _open(w, report)
        p = w.page
        group = choice.get("group")
        if group:
            p.select_option("#explorer-group", group[0])
        if "cls" in choice:
            p.select_option("#explorer-class", str(choice["cls"]))
        p.select_option("#explorer-sort", choice["sort"][0])
        p.select_option("#explorer-dir", choice["sort"][1])
        got = _shown_ids(p)
        assert w.errors == []
    want = _expected(report, group=group[1] if group else None, cls=choice.get("cls"), key=choice["sort"][0],
                     desc=choice["sort"][1] == "desc")
    assert got == want


def test_explorer_pages_links_and_shows_each_samples_thumbnail_and_trajectory(report):
    with browser_page() as w:
        _open(w, report)
        p = w.page
        assert _shown_ids(p) == list(range(50))
        p.click("#explorer-next")
        assert _shown_ids(p) == list(range(50, 100))
        assert re.match(r"51.100 of 240", p.inner_text("#explorer-info"))
        _open(w, report, "#sample=137")
        assert _shown_ids(p) == [137]
        p.wait_for_selector("canvas.raster[data-drawn='1']")
        assert non_blank(p.locator("#sample-137 canvas.raster").screenshot())
        thumb = p.locator("#sample-137 .thumb")
        sheet = thumb.get_attribute("data-sheet")
        style = thumb.evaluate("e => [e.style.backgroundPosition, e.style.backgroundSize]")
        assert w.errors == [] and w.network() == []
    # the page points at the sample's cell of its sprite sheet (16 x 16 cells of 12 x 10 px, shown 64 px high)
    # and that cell holds the sample's own thumbnail
    assert sheet == "explorer/s-0000.png"
    r, c = divmod(137, 16)
    w_px, h_px = round(10 * 64 / 12), 64
    assert style == [f"{-c * w_px}px {-r * h_px}px", f"{16 * w_px}px auto"]
    img = _png_rgb(report["out"] / sheet)
    np.testing.assert_array_equal(img[r * 12:(r + 1) * 12, c * 10:(c + 1) * 10], report["images"][137])


def test_the_explorer_draws_cells_a_row_did_not_evaluate_in_grey(tmp_path):
    """A row that covered part of the split (limit_val_batches): its missing cells are grey, never red."""
    import io

    import h5py

    need_browser()
    stores = tmp_path / "stores"
    stores.mkdir()
    for i, name in enumerate(["a", "b", "c"]):
        write_store(stores / f"{name}.h5", name, i, n=120)
    with h5py.File(stores / "a.h5", "a") as f:  # as a row of limit_val_batches leaves it: ids 0..59 not seen
        ev = f["splits/val/evaluated"]
        ev[1, :60] = False
    out = tmp_path / "report"
    assert main(["report", str(stores), "--out", str(out), "--bootstrap", "20", "--null-draws", "0", "--quiet"]) == 0
    grey = np.array([189, 189, 189])
    shots = {}
    with browser_page() as w:
        for sid in (10, 100):
            w.page.goto((out / "index.html").as_uri() + f"#sample={sid}")
            w.page.wait_for_selector(f"#sample-{sid} canvas.raster[data-drawn='1']")
            shots[sid] = w.page.locator(f"#sample-{sid} canvas.raster").screenshot()
        assert w.errors == []
    for sid, png in shots.items():
        img = _png_rgb(io.BytesIO(png))
        has_grey = bool((np.abs(img - grey).sum(axis=-1) <= 6).any())
        assert has_grey == (sid < 60), sid  # sample 10 was not evaluated in a's row 1; sample 100 always was
