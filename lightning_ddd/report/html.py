"""A self-contained ``index.html`` that leads with its findings: headline numbers and key figures first, then
galleries of example images, the sample explorer, per-run figures, and the long tables (collapsed) at the end.
For models evaluated once (no training), the page speaks of models and has no per-run dynamics sections.

The page is a Jinja template (``templates/report.html.j2``) rendered with autoescaping: values from the
summary (run names, notes, captions) are escaped by default; the few sentences built here that carry markup are
:class:`markupsafe.Markup` built with ``Markup.format``, which escapes their arguments. Inline CSS and
JavaScript; figures, images and the explorer's data lie beside it; nothing is loaded from the network, and it
works from ``file://``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from lightning_ddd.analysis.difficulty import Difficulty
from lightning_ddd.report.summary_types import DifferentData, Summary

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}
th{background:#f4f4f4}figure{margin:1.5em 0}figcaption{font-size:.85em;color:#555}img{max-width:100%}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em 1em}
nav.toc{background:#f7f7f7;padding:.5em 1em;font-size:.9em}nav.toc a{margin-right:1em}
.headline{font-size:1.05em}.headline li{margin:.2em 0}
.gallery{display:flex;flex-wrap:wrap;gap:6px}.tile{width:104px;font-size:.7em;line-height:1.2}
.tile img{width:96px;height:96px;object-fit:contain;image-rendering:pixelated;background:#eee;display:block}
.tile .le{color:#b00;font-weight:bold}details{margin:.5em 0}summary{cursor:pointer;font-weight:bold}
.explorer-controls{display:flex;flex-wrap:wrap;gap:.6em;align-items:center;margin:.5em 0;font-size:.9em}
.explorer-list td{vertical-align:middle}.thumb{background-repeat:no-repeat;image-rendering:pixelated}
canvas.raster{image-rendering:pixelated;border:1px solid #ccc}
"""


KEY_FIGURES = ("k_histogram", "kappa_heatmaps", "kappa_to_base")
SECTIONS = (("findings", "Findings"), ("key-figures", "Key figures"), ("galleries", "Galleries"),
            ("explorer", "Sample explorer"), ("runs", "Runs"), ("statistics", "Tables and statistics"))
MODEL_SECTIONS = (("findings", "Findings"), ("key-figures", "Key figures"), ("difficulty", "Difficulty"),
                  ("galleries", "Galleries"), ("explorer", "Sample explorer"), ("statistics", "Tables and statistics"))
CLASSES3 = tuple(d.key for d in Difficulty.observed())


def _fmt(v: Any) -> str:
    """A table cell: an en dash for missing values, floats to four places."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return v if isinstance(v, Markup) else str(v)


def _p(value: Any, draws: int | None = None) -> str:
    """A p-value as text: a Monte-Carlo p of 0 is ``< 1/(draws + 1)``; tiny exact p-values in scientific notation."""
    if value is None:
        return "–"
    if draws and value == 0:
        return f"< {1 / (draws + 1):.1e}"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"


def _mean_offdiag(matrix: Any) -> float | None:
    vals = [v for i, row in enumerate(matrix) for j, v in enumerate(row) if i < j and v is not None]
    return sum(vals) / len(vals) if vals else None


def _findings(s: Summary, unit: str) -> list[Markup]:
    items = []
    if "difficulty" in s:
        f = s["difficulty"]["fractions"]
        b = s["binomial"]
        items.append(Markup(
            "<b>{:.1f} %</b> of samples are trivial (every {} correct) and <b>{:.1f} %</b> impossible (every {} "
            "wrong); independent {}s of the same mean accuracy ({:.1f} %) would give {:.1f} % and {:.1f} %. "
            "In-between: {:.1f} %.").format(100 * f["trivial"], unit, 100 * f["impossible"], unit, unit,
                                            100 * b["mean_accuracy"], 100 * b["binomial"][-1],
                                            100 * b["binomial"][0], 100 * f["in_between"]))
        if "all_but_one" in s:
            g = s["all_but_one"]["fractions"]
            items.append(Markup("All but one (t = 1): trivial {:.1f} %, in-between {:.1f} %, impossible {:.1f} %.")
                         .format(100 * g["trivial"], 100 * g["in_between"], 100 * g["impossible"]))
    cons = s.get("consistency", {})
    if "all" in cons:
        a = _mean_offdiag(cons["all"]["kappa"])
        mid = _mean_offdiag(cons["in_between"]["kappa"]) if "in_between" in cons else None
        if a is not None:
            text = Markup("Mean error consistency over the {} pairs: <b>&kappa; = {:.3f}</b> on all samples").format(
                len(s["runs"]) * (len(s["runs"]) - 1) // 2, a)
            if mid is not None:
                text += Markup(", <b>{:.3f}</b> on the in-between samples only (see the circularity note)").format(mid)
            items.append(text + ".")
    if "different_data" in s:
        dd = s["different_data"]
        items.append(Markup("Runs on disjoint halves of the data: &kappa; = {} on all samples, {} on in-between "
                            "samples (paper: 0.492 and &minus;0.122).").format(_fmt(dd.get("kappa_all")),
                                                                             _fmt(dd.get("kappa_in_between"))))
    for p in s.get("plus_epochs", []):
        if p["n"] in (1, 10):
            items.append(Markup("The base run with itself {:g} epoch(s) later: &kappa; = {} (all), {} (in-between).")
                         .format(p["n"], _fmt(p.get("kappa_all")), _fmt(p.get("kappa_in_between"))))
    per_run = s.get("per_run", {})
    if s.get("kind") != "models" and s.get("base") in per_run:
        r = per_run[s["base"]]
        c = r["category_fractions"]
        items.append(Markup("Base run {}: accuracy {:.1f} %; always learned {:.1f} %, never learned {:.1f} %, "
                            "flip-flopping {:.1f} %.").format(s["base"], 100 * r["accuracy"][-1],
                                                              100 * c["always_learned"], 100 * c["never_learned"],
                                                              100 * c["flip_flopping"]))
    return items


def _binomial_text(s: Summary, unit: str) -> Markup:
    if "binomial" not in s:
        return Markup("")
    b = s["binomial"]
    return Markup("<p>Mean accuracy {}. Independent {}s of equal difficulty (binomial reference) would put {} of "
                  "samples in &lsquo;all correct&rsquo; and {} in &lsquo;all wrong&rsquo;; observed: {} and {}. Total "
                  "variation distance from the binomial: {}.</p>").format(
        _fmt(b["mean_accuracy"]), unit, _fmt(b["binomial"][-1]), _fmt(b["binomial"][0]), _fmt(b["observed"][-1]),
        _fmt(b["observed"][0]), _fmt(b["total_variation"]))


def _pair_tables(s: Summary) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    runs = s["runs"]
    if "consistency" not in s or len(runs) > 30:
        return out
    for key, label in (("all", "all samples"), ("in_between", "in-between samples only")):
        c = s["consistency"].get(key)
        if c is None:
            continue
        sig = s.get("significance", {}).get(key, {})
        rows = []
        for i in range(len(runs)):
            for j in range(i + 1, len(runs)):
                rows.append([runs[i], runs[j], c["kappa"][i][j], c["ci_low"][i][j], c["ci_high"][i][j],
                             sig["debiased_kappa"][i][j] if sig else None,
                             sig["copy_probability"][i][j] if sig else None,
                             _p(sig["p_klein_adj"][i][j], sig["n_draws"]) if "p_klein_adj" in sig else None,
                             _p(sig["p_exact_adj"][i][j]) if sig else None,
                             c["observed"][i][j], c["expected"][i][j], c["kappa_min"][i][j], c["kappa_max"][i][j]])
        out.append({"key": key, "label": label, "c": c, "sig": sig, "rows": rows})
    return out


def _condition_tables(s: Summary) -> list[tuple[str, tuple[list[str], list[list[Any]]]]]:
    out = []
    for key, cc in s.get("conditions", {}).items():
        names = cc["conditions"]
        rows = [[names[i], *(f"{cc['mean'][i][j]:.3f} ± {cc['std_error'][i][j]:.3f}"
                             if cc["mean"][i][j] is not None and cc["std_error"][i][j] is not None
                             else _fmt(cc["mean"][i][j]) for j in range(len(names)))]
                for i in range(len(names))]
        out.append((key.replace("_", "-"), (list(names), rows)))
    return out


def _interval(v: Sequence[float | None] | None) -> str:
    return " – ".join(f"{x:.3f}" for x in v) if v and None not in v else "–"  # type: ignore[str-format]


def _different_rows(dd: DifferentData) -> list[list[object]]:
    rows: list[list[object]] = []
    if "kappa_all" in dd:
        rows.append(["all samples", dd["kappa_all"], _interval(dd.get("ci_all"))])
    if "kappa_in_between" in dd:
        rows.append(["in-between samples", dd["kappa_in_between"], _interval(dd.get("ci_in_between"))])
    return rows


def _context(s: Summary, script: str) -> dict[str, object]:
    models = s.get("kind") == "models"
    mixed = s.get("kind") == "training runs and evaluated models"
    unit = "model" if models else "run"
    figures = s.get("figures", [])
    cd = s.get("condition_differences", {})
    le = s.get("label_errors")
    ref = s.get("k", {}).get("reference_runs")
    return {
        "s": s, "css": CSS, "script": Markup(script), "models": models, "unit": unit,
        "mixed": mixed,
        "sections": MODEL_SECTIONS if models else SECTIONS, "findings": _findings(s, unit),
        "key_figures": [f for name in KEY_FIGURES for f in figures if f["name"] == name],
        "class_figures": [f for f in figures if f["name"] == "class_shares"],
        "run_figures": [f for f in figures if f["name"] not in (*KEY_FIGURES, "class_shares")],
        "run_rows": [[name, *([s["run_kinds"][name]] if mixed else []), r["accuracy"][-1],
                      r["category_fractions"]["always_learned"], r["category_fractions"]["never_learned"],
                      r["category_fractions"]["flip_flopping"], r["mean_forgetting_events"]]
                     for name, r in s.get("per_run", {}).items()],
        "model_rows": [[name, r["accuracy"][-1]] for name, r in s.get("per_run", {}).items()],
        "binomial_text": _binomial_text(s, unit),
        "label_error_rows": [["share of the class that are label errors", *(le["share_within"][c] for c in CLASSES3)],
                             ["share of all label errors", *(le["share_of_errors"][c] for c in CLASSES3)]]
        if le else [],
        "plus_rows": [[f"+{p['n']:g}", p["epoch"], p.get("kappa_all"), p.get("kappa_in_between")]
                      for p in s.get("plus_epochs", [])],
        "different_rows": _different_rows(s.get("different_data", {})),
        "condition_tables": _condition_tables(s),
        "difference_tables": [(key, [[r["a"], r["b"], r["difference"], r["ci_low"], r["ci_high"], r["p"], r["p_adj"]]
                                     for r in rows]) for key, rows in cd.get("pairs", {}).items()],
        "pair_tables": _pair_tables(s), "n_pairs": len(s["runs"]) * (len(s["runs"]) - 1) // 2,
        "own_reference": ref is not None and sorted(ref) == sorted(s["runs"]), "n_reference": len(ref or []),
    }


def render_html(s: Summary, script: str | None = None) -> str:
    """Render the report page from the JSON summary (``script``: the explorer's JavaScript, default the
    package's ``explorer.js``).
    """
    from lightning_ddd.report.templates import render

    if script is None:
        from importlib.resources import files

        script = files("lightning_ddd.report").joinpath("explorer.js").read_text()
    return render("report.html.j2", _context(s, script.replace("</", "<\\/")), filters={"fmt": _fmt})
