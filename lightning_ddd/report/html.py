"""A self-contained ``index.html`` that leads with its findings: headline numbers and key figures first, then
galleries of example images, the sample explorer, per-run figures, and the long tables (collapsed) at the end.

Inline CSS and JavaScript; figures, images and the explorer's data lie beside it; nothing is loaded from the
network, and it works from ``file://``."""

from __future__ import annotations

import html
from typing import Any

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


def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return _e(v)


def _p(value: Any, draws: int | None = None) -> str:
    """A p-value as text: a Monte-Carlo p of 0 is ``< 1/(draws + 1)``; tiny exact p-values in scientific notation."""
    if value is None:
        return "–"
    if draws and value == 0:
        return f"< {1 / (draws + 1):.1e}"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(f: dict[str, str]) -> str:
    link = f" (<a href='{_e(f['svg'])}'>SVG</a>)" if "svg" in f else ""
    return (f"<figure id='fig-{_e(f['name'])}'><img src='{_e(f['png'])}' alt='{_e(f['caption'])}'>"
            f"<figcaption>{_e(f['caption'])}{link}</figcaption></figure>")


KEY_FIGURES = ("k_histogram", "kappa_heatmaps", "kappa_to_base")
SECTIONS = (("findings", "Findings"), ("key-figures", "Key figures"), ("galleries", "Galleries"),
            ("explorer", "Sample explorer"), ("runs", "Runs"), ("statistics", "Tables and statistics"))


def _mean_offdiag(matrix: Any) -> float | None:
    vals = [v for i, row in enumerate(matrix) for j, v in enumerate(row) if i < j and v is not None]
    return sum(vals) / len(vals) if vals else None


def _findings(s: dict[str, Any]) -> list[str]:
    items = []
    if "difficulty" in s:
        f = s["difficulty"]["fractions"]
        b = s["binomial"]
        items.append(f"<b>{100 * f['trivial']:.1f} %</b> of samples are trivial (every run correct) and "
                     f"<b>{100 * f['impossible']:.1f} %</b> impossible (every run wrong); independent runs of the same "
                     f"mean accuracy ({100 * b['mean_accuracy']:.1f} %) would give {100 * b['binomial'][-1]:.1f} % and "
                     f"{100 * b['binomial'][0]:.1f} %. In-between: {100 * f['in_between']:.1f} %.")
    cons = s.get("consistency", {})
    if "all" in cons:
        a = _mean_offdiag(cons["all"]["kappa"])
        mid = _mean_offdiag(cons["in_between"]["kappa"]) if "in_between" in cons else None
        if a is not None:
            items.append(f"Mean error consistency over the {len(s['runs']) * (len(s['runs']) - 1) // 2} pairs: "
                         f"<b>&kappa; = {a:.3f}</b> on all samples"
                         + (f", <b>{mid:.3f}</b> on the in-between samples only (see the circularity note)"
                            if mid is not None else "") + ".")
    if "different_data" in s:
        dd = s["different_data"]
        items.append(f"Runs on disjoint halves of the data: &kappa; = {_fmt(dd.get('kappa_all'))} on all samples, "
                     f"{_fmt(dd.get('kappa_in_between'))} on in-between samples (paper: 0.492 and &minus;0.122).")
    for p in s.get("plus_epochs", []):
        if p["n"] in (1, 10):
            items.append(f"The base run with itself {p['n']:g} epoch(s) later: &kappa; = {_fmt(p.get('kappa_all'))} "
                         f"(all), {_fmt(p.get('kappa_in_between'))} (in-between).")
    per_run = s.get("per_run", {})
    if s.get("base") in per_run:
        r = per_run[s["base"]]
        c = r["category_fractions"]
        items.append(f"Base run {_e(s['base'])}: accuracy {100 * r['accuracy'][-1]:.1f} %; always learned "
                     f"{100 * c['always_learned']:.1f} %, never learned {100 * c['never_learned']:.1f} %, "
                     f"flip-flopping {100 * c['flip_flopping']:.1f} %.")
    return items


def _galleries(s: dict[str, Any]) -> list[str]:
    g = s.get("galleries")
    if not g:
        return ["<p>No galleries (the per-sample table of the base run is missing).</p>"]
    out = []
    img = s.get("images", {})
    if g["with_images"]:
        out.append(f"<p>Images from {_e(img.get('source'))}. Each group shows up to {g['size']} examples: a seeded "
                   f"uniform draw (seed {g['seed']}) of the group, or for flip-flopping samples the most forgotten "
                   "first; W&amp;B's hard-samples table uses the same rule. Under each image: id, label, the base "
                   "run's prediction at the comparison epoch, k of M runs correct, forgetting events of the base run "
                   "(&infin; for never learned), and &#9888; for a known label error.</p>")
    else:
        out.append(f"<p class='note'>{_e(img.get('note') or 'No images.')} The groups below list the ids that "
                   "would be shown.</p>")
    for group in g["groups"]:
        out.append(f"<h3 id='gallery-{_e(group['name'])}'>{_e(group['title'])}, {_e(group['scope'])} "
                   f"({group['total']} samples; {_e(group['rule'])})</h3>")
        tiles = []
        for x in group["samples"]:
            pic = f"<img src='{_e(x['image'])}' alt='sample {x['id']}' loading='lazy'>" if x.get("image") else ""
            k = f"k {x['k']} of {x['of']}" if x.get("k") is not None else ""
            forg = "&infin;" if x["forgetting"] == "inf" else x["forgetting"]
            le = " <span class='le' title='known label error'>&#9888;</span>" if x.get("label_error") else ""
            tiles.append(f"<div class='tile' data-id='{x['id']}' data-group='{_e(group['name'])}'>{pic}"
                         f"<a href='#sample={x['id']}'>#{x['id']}</a> {_e(x['label'])}{le}<br>"
                         f"pred {_e(x.get('pred'))}<br>{k}<br>forgetting {forg}</div>")
        out.append("<div class='gallery'>" + "".join(tiles) + "</div>" if tiles else "<p>(none)</p>")
    cs = s.get("class_shares")
    if cs:
        fig = [f for f in s.get("figures", []) if f["name"] == "class_shares"]
        out.append("<h3 id='gallery-classes'>Classes with the most impossible samples</h3>")
        out += [_figure(f) for f in fig]
    return out


def _explorer(s: dict[str, Any], script: str) -> list[str]:
    ex = s.get("explorer")
    if not ex:
        return ["<p>The explorer was not written (<code>--no-explorer</code>).</p>"]
    return [f"<p>All {ex['samples']} samples of the base run: filter by group and class, sort, page through; each row "
            "shows the thumbnail" + ("" if ex["thumbnails"] else " (none: see the galleries' note)") +
            " and the decisions of every run at every common epoch (blue correct, red wrong, grey not evaluated in "
            "that row). A link <code>#sample=ID</code> jumps to one sample.</p>",
            "<div id='explorer-app'></div>",
            "<script>window.DDD=window.DDD||{};</script>",
            "<script src='explorer/samples.js'></script>",
            f"<script>{script}</script>"]


def _statistics(s: dict[str, Any]) -> list[str]:
    parts = []
    if "difficulty" in s:
        d = s["difficulty"]
        parts.append("<h3>Trivial, in-between, impossible</h3>")
        parts.append(_table(["", "trivial", "in-between", "impossible"],
                            [["samples", d["counts"]["trivial"], d["counts"]["in_between"], d["counts"]["impossible"]],
                             ["share", d["fractions"]["trivial"], d["fractions"]["in_between"],
                              d["fractions"]["impossible"]]]))
        b = s["binomial"]
        parts.append(f"<p>Mean accuracy {_fmt(b['mean_accuracy'])}. Independent runs of equal difficulty "
                     f"(binomial reference) would put {_fmt(b['binomial'][-1])} of samples in "
                     f"&lsquo;all correct&rsquo; and {_fmt(b['binomial'][0])} in &lsquo;all wrong&rsquo;; observed: "
                     f"{_fmt(b['observed'][-1])} and "
                     f"{_fmt(b['observed'][0])}. Total variation distance from the binomial: "
                     f"{_fmt(b['total_variation'])}.</p>")
    if "label_errors" in s:
        le = s["label_errors"]
        parts.append("<h3>Label errors</h3>")
        parts.append(_table(["", "trivial", "in-between", "impossible"],
                            [["share of the class that are label errors", *(le["share_within"][c] for c in
                              ("trivial", "in_between", "impossible"))],
                             ["share of all label errors", *(le["share_of_errors"][c] for c in
                              ("trivial", "in_between", "impossible"))]]))
    if "plus_epochs" in s:
        parts.append("<h3>+n epochs: the base run with itself later</h3>")
        rows = [[f"+{p['n']:g}", p["epoch"], p.get("kappa_all"), p.get("kappa_in_between")] for p in s["plus_epochs"]]
        parts.append("<p>Kappa of the base run at the comparison epoch E with itself at E + n (paper §3: +1 and "
                     "+10 epochs), on all samples and on the in-between samples at E.</p>")
        parts.append(_table(["n", "epoch", "kappa, all samples", "kappa, in-between"], rows))
    if "different_data" in s:
        dd = s["different_data"]
        parts.append("<h3>Different data: the two disjoint halves</h3>")
        parts.append(f"<p>{_e(dd['runs'][0])} and {_e(dd['runs'][1])} (condition {_e(dd['condition'])}) trained on "
                     "disjoint halves of the training set (the paper: 0.492 on all samples, &minus;0.122 on "
                     "in-between samples).</p>")
        parts.append(_table(["", "kappa", "interval"],
                            [[label, dd.get(f"kappa_{key}"),
                              " – ".join(f"{v:.3f}" for v in dd[f"ci_{key}"]) if dd.get(f"ci_{key}") and
                              None not in dd[f"ci_{key}"] else "–"]
                             for key, label in (("all", "all samples"), ("in_between", "in-between samples"))
                             if f"kappa_{key}" in dd]))
    if "conditions" in s:
        parts.append("<h3>Conditions (mean kappa over model pairs, standard error)</h3>")
        for key, cc in s["conditions"].items():
            names = cc["conditions"]
            rows = [[names[i], *(f"{cc['mean'][i][j]:.3f} ± {cc['std_error'][i][j]:.3f}"
                                 if cc["mean"][i][j] is not None and cc["std_error"][i][j] is not None
                                 else _fmt(cc["mean"][i][j]) for j in range(len(names)))]
                    for i in range(len(names))]
            parts.append(f"<h4>{_e(key.replace('_', '-'))}</h4>" + _table(["", *names], rows))
    if "condition_differences" in s:
        cd = s["condition_differences"]
        parts.append("<h3>Do conditions differ in their consistency with the base condition?</h3>")
        parts.append(f"<p>Difference of the mean kappa with {_e(cd['base'])} of two conditions, paired bootstrap over "
                     f"samples ({cd['n_boot']} resamples), p-values corrected over the condition pairs "
                     f"({'Holm' if cd['method'] == 'holm' else 'Benjamini-Hochberg'}).</p>")
        for key, rows in cd["pairs"].items():
            parts.append(f"<h4>{'all samples' if key == 'all' else 'in-between samples'}</h4>")
            parts.append(_table(["condition a", "condition b", "kappa a - kappa b", "low", "high", "p", "p (adj.)"],
                                [[r["a"], r["b"], r["difference"], r["ci_low"], r["ci_high"], r["p"], r["p_adj"]]
                                 for r in rows]))
    if "consistency" in s:
        parts.append("<h3>Error consistency of every pair</h3>")
        runs = s["runs"]
        for key, label in (("all", "all samples"), ("in_between", "in-between samples only")):
            c = s["consistency"].get(key)
            if c is None or len(runs) > 30:
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
            text = ""
            if sig:
                method = "Holm" if sig["method"] == "holm" else "Benjamini-Hochberg"
                text = (f"<p>p-values against independent observers, corrected for the "
                        f"{len(runs) * (len(runs) - 1) // 2} pairs ({method}): Klein et al.'s test "
                        f"({sig['n_draws']} null draws; accuracies from their Beta posteriors) and the exact test "
                        "given both accuracies. Less biased kappa: n&kappa;/((n&minus;1)+&kappa;); copy probability: "
                        "the chance that one run copies the other's decision (Klein et al. 2025).</p>")
            parts.append(f"<details id='pairs-{key}'><summary>{label}: {len(rows)} pairs ({c['n_samples']} samples, "
                         f"{c['n_boot']} bootstrap resamples, {int(100 * c['confidence'])} % intervals)</summary>"
                         + text + _table(["run a", "run b", "kappa", "low", "high", "kappa (less biased)",
                                          "copy prob.", "p Klein (adj.)", "p exact (adj.)", "c_obs", "c_exp",
                                          "kappa min", "kappa max"], rows) + "</details>")
    if "consistency" in s and "in_between" in s["consistency"]:
        ref = s.get("k", {}).get("reference_runs")
        own = ref is not None and sorted(ref) == sorted(s["runs"])
        parts.append(
            "<p class='note' id='circularity'><b>Circularity.</b> " + (
                "The in-between samples were chosen from the same runs whose kappa is measured on them. Removing "
                "the samples all runs get right or all get wrong removes only agreements, so in-between kappa is "
                "lower by construction, even for runs that share nothing but the data. For an estimate free of "
                "this selection, define trivial and impossible with independent runs: <code>lightning-ddd report "
                "STORES --reference OTHER_STORES</code> (k is then counted over the reference runs)."
                if own else
                f"The in-between samples were chosen by {len(ref or [])} reference run(s) (--reference), not by the "
                "runs whose kappa is measured, so the selection does not lower kappa by construction.") + "</p>")
    if s.get("samples_table"):
        parts.append(f"<p>Per-sample table: <a href='{_e(s['samples_table'])}'>{_e(s['samples_table'])}</a>; "
                     "numbers: <a href='summary.json'>summary.json</a>.</p>")
    return parts


def render_html(s: dict[str, Any], script: str | None = None) -> str:
    """Render the report page from the JSON summary (``script``: the explorer's JavaScript, default the
    package's ``explorer.js``)."""
    if script is None:
        from importlib.resources import files

        script = files("lightning_ddd.report").joinpath("explorer.js").read_text()
    script = script.replace("</", "<\\/")
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>lightning-ddd report</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>Decision dynamics and dichotomous data difficulty</h1>",
             f"<p>{s['n_runs']} {'model(s)' if s.get('kind') == 'models' else 'run(s)'} on split "
             f"<b>{_e(s['split'])}</b>, {s['n_samples']} samples; cross-"
             f"{'model' if s.get('kind') == 'models' else 'run'} comparisons at <b>{_e(s.get('row', 'last'))}</b>; "
             f"base {'model' if s.get('kind') == 'models' else 'run'} <b>{_e(s['base'])}</b>; tolerance "
             f"t = {s['tolerance']} (trivial: k &ge; M &minus; t, impossible: k &le; t).</p>",
             "<nav class='toc'>" + "".join(f"<a href='#{a}'>{_e(t)}</a>" for a, t in SECTIONS) + "</nav>"]
    parts.append("<section id='findings'><h2>Findings</h2>")
    items = _findings(s)
    if items:
        parts.append("<ul class='headline'>" + "".join(f"<li>{x}</li>" for x in items) + "</ul>")
    cmp = s.get("comparison")
    if cmp and s.get("kind") == "models":
        parts.append("<p id='comparison'>Every model was evaluated once (pretrained or saved weights, not trained "
                     "here): there is no comparison epoch and no per-model training dynamics; difficulty, error "
                     "consistency and significance are across the models.</p>")
    elif cmp:
        parts.append(f"<p id='comparison'>Comparison epoch: <b>{_e(s.get('row'))}</b>, chosen as {_e(cmp['how'])}. "
                     f"Per-run outputs (categories, forgetting events, first-learned, data maps, AUM, samples.csv) use "
                     f"{_e(cmp['per_run_rows'])}"
                     + ("" if cmp["per_run_rows"] == "all recorded rows" else " (<code>--all-rows</code> for all)")
                     + ".</p>")
    for note in s.get("notes", []):
        parts.append(f"<p class='note'>{_e(note)}</p>")
    parts.append("</section>")
    figures = s.get("figures", [])
    key = [f for name in KEY_FIGURES for f in figures if f["name"] == name]
    parts.append("<section id='key-figures'><h2>Key figures</h2>")
    parts += [_figure(f) for f in key] or ["<p>Cross-run figures need at least two runs.</p>"]
    parts.append("</section><section id='galleries'><h2>Galleries</h2>")
    parts += _galleries(s)
    parts.append("</section><section id='explorer'><h2>Sample explorer</h2>")
    parts += _explorer(s, script)
    parts.append("</section><section id='runs'><h2>Runs</h2>")
    rows = [[name, r["accuracy"][-1], r["category_fractions"]["always_learned"],
             r["category_fractions"]["never_learned"], r["category_fractions"]["flip_flopping"],
             r["mean_forgetting_events"]] for name, r in s["per_run"].items()]
    parts.append(_table(["run", "accuracy at the comparison epoch", "always learned", "never learned", "flip-flopping",
                         "mean forgetting events"], rows))
    parts += [_figure(f) for f in figures if f["name"] not in (*KEY_FIGURES, "class_shares")]
    parts.append("</section><section id='statistics'><h2>Tables and statistics</h2>")
    parts += _statistics(s)
    parts.append("</section></body></html>")
    return "\n".join(parts)
