"""A self-contained ``index.html``: inline CSS, figures beside it, no script, no remote resource."""

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
    """A p-value as text: a Monte-Carlo p of 0 is ``< 1/draws``; tiny exact p-values in scientific notation."""
    if value is None:
        return "–"
    if draws and value == 0:
        return f"< {1 / draws:.0e}"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(s: dict[str, Any]) -> str:
    """Render the report page from the JSON summary."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>lightning-ddd report</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>Decision dynamics and dichotomous data difficulty</h1>",
             f"<p>{s['n_runs']} run(s) on split <b>{_e(s['split'])}</b>, {s['n_samples']} samples; cross-run "
             f"comparisons at <b>{_e(s.get('row', 'last'))}</b>; base run <b>{_e(s['base'])}</b>; tolerance "
             f"t = {s['tolerance']} (trivial: k &ge; M &minus; t, impossible: k &le; t).</p>"]
    cmp = s.get("comparison")
    if cmp:
        parts.append(f"<p id='comparison'>Comparison epoch: <b>{_e(s.get('row'))}</b>, chosen as {_e(cmp['how'])}. "
                     f"Per-run outputs (categories, forgetting events, first-learned, data maps, AUM, samples.csv) use "
                     f"{_e(cmp['per_run_rows'])}"
                     + ("" if cmp["per_run_rows"] == "all recorded rows" else " (<code>--all-rows</code> for all)")
                     + ".</p>")
    for note in s.get("notes", []):
        parts.append(f"<p class='note'>{_e(note)}</p>")
    if "difficulty" in s:
        d = s["difficulty"]
        parts.append("<h2>Trivial, in-between, impossible</h2>")
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
        parts.append("<h2>Label errors</h2>")
        parts.append(_table(["", "trivial", "in-between", "impossible"],
                            [["share of the class that are label errors", *(le["share_within"][c] for c in
                              ("trivial", "in_between", "impossible"))],
                             ["share of all label errors", *(le["share_of_errors"][c] for c in
                              ("trivial", "in_between", "impossible"))]]))
    if "consistency" in s:
        parts.append("<h2>Error consistency</h2>")
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
            parts.append(f"<h3>{label} ({c['n_samples']} samples, {c['n_boot']} bootstrap resamples, "
                         f"{int(100 * c['confidence'])} % intervals)</h3>")
            if sig:
                parts.append(
                    f"<p>p-values against independent observers, corrected for the {len(runs) * (len(runs) - 1) // 2}"
                    f" pairs ({'Holm' if sig['method'] == 'holm' else 'Benjamini-Hochberg'}): Klein et al.'s test "
                    f"({sig['n_draws']} null draws; accuracies from their Beta posteriors) and the exact test given "
                    "both accuracies. Less biased kappa: n&kappa;/((n&minus;1)+&kappa;); copy probability: the "
                    "chance that one run copies the other's decision (Klein et al. 2025).</p>")
            parts.append(_table(["run a", "run b", "kappa", "low", "high", "kappa (less biased)", "copy prob.",
                                 "p Klein (adj.)", "p exact (adj.)", "c_obs", "c_exp", "kappa min", "kappa max"],
                                rows))
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
    if "condition_differences" in s:
        cd = s["condition_differences"]
        parts.append("<h2>Do conditions differ in their consistency with the base condition?</h2>")
        parts.append(f"<p>Difference of the mean kappa with {_e(cd['base'])} of two conditions, paired bootstrap over "
                     f"samples ({cd['n_boot']} resamples), p-values corrected over the condition pairs "
                     f"({'Holm' if cd['method'] == 'holm' else 'Benjamini-Hochberg'}).</p>")
        for key, rows in cd["pairs"].items():
            parts.append(f"<h3>{'all samples' if key == 'all' else 'in-between samples'}</h3>")
            parts.append(_table(["condition a", "condition b", "kappa a - kappa b", "low", "high", "p", "p (adj.)"],
                                [[r["a"], r["b"], r["difference"], r["ci_low"], r["ci_high"], r["p"], r["p_adj"]]
                                 for r in rows]))
    if "plus_epochs" in s:
        parts.append("<h2>+n epochs: the base run with itself later</h2>")
        rows = [[f"+{p['n']:g}", p["epoch"], p.get("kappa_all"), p.get("kappa_in_between")] for p in s["plus_epochs"]]
        parts.append("<p>Kappa of the base run at the comparison epoch E with itself at E + n (paper §3: +1 and "
                     "+10 epochs), on all samples and on the in-between samples at E.</p>")
        parts.append(_table(["n", "epoch", "kappa, all samples", "kappa, in-between"], rows))
    if "different_data" in s:
        dd = s["different_data"]
        parts.append("<h2>Different data: the two disjoint halves</h2>")
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
        parts.append("<h2>Conditions (mean kappa over model pairs, standard error)</h2>")
        for key, cc in s["conditions"].items():
            names = cc["conditions"]
            rows = [[names[i], *(f"{cc['mean'][i][j]:.3f} ± {cc['std_error'][i][j]:.3f}"
                                 if cc["mean"][i][j] is not None and cc["std_error"][i][j] is not None
                                 else _fmt(cc["mean"][i][j]) for j in range(len(names)))]
                    for i in range(len(names))]
            parts.append(f"<h3>{_e(key.replace('_', '-'))}</h3>" + _table(["", *names], rows))
    parts.append("<h2>Runs</h2>")
    rows = [[name, r["accuracy"][-1], r["category_fractions"]["always_learned"],
             r["category_fractions"]["never_learned"], r["category_fractions"]["flip_flopping"],
             r["mean_forgetting_events"]] for name, r in s["per_run"].items()]
    parts.append(_table(["run", "accuracy at the comparison epoch", "always learned", "never learned", "flip-flopping",
                         "mean forgetting events"], rows))
    parts.append("<h2>Figures</h2>")
    for f in s.get("figures", []):
        link = f" (<a href='{_e(f['svg'])}'>SVG</a>)" if "svg" in f else ""
        parts.append(f"<figure><img src='{_e(f['png'])}' alt='{_e(f['caption'])}'>"
                     f"<figcaption>{_e(f['caption'])}{link}</figcaption></figure>")
    if s.get("samples_table"):
        parts.append(f"<p>Per-sample table: <a href='{_e(s['samples_table'])}'>{_e(s['samples_table'])}</a>; "
                     "numbers: <a href='summary.json'>summary.json</a>.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
