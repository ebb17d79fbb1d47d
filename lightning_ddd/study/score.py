"""``lightning-ddd study score``: read the observers' result files (jsPsych's CSV or JSON, as the study saves
them), check them against the study's design, and score them (numpy for the statistics, matplotlib for the
figures, the analysis module's kappa for error consistency).

Experiment 1: per observer accuracy with a Wilson 95 % interval and an exact two-sided binomial p-value
against 50 %; mean and range over observers; the between-observer error-consistency matrix (kappa with
bootstrap intervals over pairs); per image, human accuracy beside the networks' k. Experiment 2: the share of
trivial, in-between and impossible images per answer option of each question (the paper's Figure 6).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from lightning_ddd.study.documents import (
    Design,
    Observers,
    ObserverScore,
    RatingsScore,
    Response,
    StudySummary,
    Trial,
    TwoAfcScore,
)

Z95 = 1.959963984540054
DIFFICULTIES = ("trivial", "in_between", "impossible")
RATING_OPTIONS = {"categories": ("0", "1", "2", "3", "4", "5+"), "main_category": ("no", "maybe", "yes"),
                  "odd": ("no", "slightly", "very")}
RATING_QUESTIONS = {"categories": "How many object categories are in the image?",
                    "main_category": "Is there a main category?", "odd": "Is the presentation of the objects odd?"}


class ResultsError(ValueError):
    """A results file that cannot be scored against this study (one line saying why and what to do)."""


# ------------------------------------------------------------------------------------------ statistics
def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % by default)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_p_value(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test: the probability of every outcome no more likely than ``k``."""
    if n <= 0:
        return float("nan")
    i = np.arange(n + 1)
    logpmf = (math.lgamma(n + 1) - np.array([math.lgamma(j + 1) + math.lgamma(n - j + 1) for j in i])
              + i * math.log(p) + (n - i) * math.log1p(-p))
    pmf = np.exp(logpmf)
    return float(min(1.0, pmf[pmf <= pmf[k] * (1 + 1e-7)].sum()))


# ------------------------------------------------------------------------------------------ reading
def _value(v: Any) -> Any:
    if isinstance(v, str):
        if v in ("true", "false"):
            return v == "true"
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    return v


def read_results(path: str | os.PathLike) -> list[dict[str, object]]:
    """The trials of one results file (jsPsych CSV or JSON), values typed.

    Raises:
        ResultsError: empty, truncated, or not a jsPsych export.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ResultsError(f"cannot read results file {str(p)!r}: {err}.") from None
    if not text.strip():
        raise ResultsError(f"results file {str(p)!r} is empty; ask the observer for the downloaded file again.")
    if text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except ValueError as err:
            raise ResultsError(f"results file {str(p)!r} is not complete JSON ({err}): it is truncated or damaged; "
                               "ask the observer for the downloaded file again.") from None
        rows = data if isinstance(data, list) else data.get("trials", []) if isinstance(data, dict) else []
        if not all(isinstance(r, dict) for r in rows):
            raise ResultsError(f"results file {str(p)!r} is JSON but not a list of jsPsych trials.")
        return [dict(r) for r in rows]
    try:
        table = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as err:
        raise ResultsError(f"results file {str(p)!r} is not a complete CSV ({err}): it is truncated or damaged; "
                           "ask the observer for the downloaded file again.") from None
    header, body = table[0], [r for r in table[1:] if r]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ResultsError(f"results file {str(p)!r} is truncated or damaged: line {line} has {len(row)} of "
                               f"{len(header)} fields; ask the observer for the downloaded file again.")
    return [{h: _value(v) for h, v in zip(header, row)} for row in body]


def _check_row(r: dict[str, object], t: Trial | None, task: str, path: Path) -> None:
    """Refuse a trial row the design does not have (another study, another version) or a damaged one."""
    n = r.get("trial_number")
    if task != "2afc":
        if t is None or r.get("sample_id") != t["sample_id"]:
            raise ResultsError(f"results file {str(path)!r} rates sample {r.get('sample_id')!r} as trial {n!r}, "
                               "which this study does not have; it comes from another study.")
        return
    if t is None or r.get("pair_id") != t["pair_id"]:
        raise ResultsError(f"results file {str(path)!r} answers pair {r.get('pair_id')!r} (trial "
                           f"{n!r}), which this study does not have; it comes from another study.")
    if (r.get("left_id"), r.get("right_id")) != (t["left"], t["right"]):
        raise ResultsError(f"results file {str(path)!r}: trial {n} showed ids ({r.get('left_id')}, "
                           f"{r.get('right_id')}), but this study's pair {t['pair_id']} is ({t['left']}, "
                           f"{t['right']}); it comes from another version of the study.")
    if r.get("response") not in (0, 1):
        raise ResultsError(f"results file {str(path)!r}: trial {n} has no response (0 or 1); the file is damaged.")


def _check_once(out: Observers, path: Path) -> None:
    """Refuse a participant who answered a trial twice (two sessions in one file)."""
    for who, trials in out.items():
        seen: set[int] = set()
        for r in trials:
            if r["trial_number"] in seen:
                raise ResultsError(f"results file {str(path)!r}: participant {who!r} answered trial "
                                   f"{r['trial_number']} twice; the file mixes two sessions.")
            seen.add(r["trial_number"])


def _trials(rows: list[dict[str, object]], path: Path, design: Design) -> Observers:
    """The study's trials in one file, by participant, checked against the design."""
    task = "2afc" if design["experiment"] == "2afc" else "ratings"
    mine = [r for r in rows if r.get("task") in ("2afc", "ratings")]
    if not mine:
        raise ResultsError(f"results file {str(path)!r} holds no trials of a lightning-ddd study (no rows with task "
                           "'2afc' or 'ratings'); is it the file the study page saved?")
    ids = {str(r.get("study_id")) for r in mine}
    if ids != {design["study_id"]} or any(r.get("task") != task for r in mine):
        raise ResultsError(f"results file {str(path)!r} comes from another study (study id "
                           f"{', '.join(sorted(ids))}; this study is {design['study_id']}, {design['experiment']}); "
                           "score it with the study folder it was made with.")
    by_trial = {t["trial"]: t for t in design["trials"]}
    out: Observers = {}
    for r in mine:
        n = r.get("trial_number")
        _check_row(r, by_trial.get(n) if isinstance(n, int) else None, task, path)
        who = str(r.get("participant", ""))
        if not who:
            raise ResultsError(f"results file {str(path)!r}: trial {n} names no participant; the file is damaged.")
        out.setdefault(who, []).append(cast(Response, r))  # checked against the design by _check_row
    _check_once(out, path)
    return out


def load_observers(results: Sequence[str | os.PathLike], design: Design) -> tuple[Observers, list[str]]:
    """Every observer's trials, by participant id, and notes (incomplete observers).

    Raises:
        ResultsError: a bad file, or one participant in two files.
    """
    observers: Observers = {}
    source: dict[str, str] = {}
    for path in results:
        for who, trials in _trials(read_results(path), Path(path), design).items():
            if who in observers:
                raise ResultsError(f"participant {who!r} appears in both {source[who]!r} and {str(path)!r}; remove "
                                   "the duplicate file (or rename one participant if they are two people).")
            observers[who] = trials
            source[who] = str(path)
    notes = []
    total = len(design["trials"])
    for who, trials in observers.items():
        if len(trials) < total:
            notes.append(f"participant {who!r} answered {len(trials)} of {total} trials (scored as far as answered).")
    return observers, notes


# ------------------------------------------------------------------------------------------ scoring
def score_2afc(observers: Observers, design: Design, *, n_boot: int = 1000, seed: int = 0) -> TwoAfcScore:
    """Experiment 1's statistics (main trials; practice left out)."""
    from lightning_ddd.analysis import pairwise_consistency

    names = sorted(observers)
    pairs = sorted(t["pair_id"] for t in design["trials"] if not t["practice"])
    col = {p: j for j, p in enumerate(pairs)}
    correct = np.zeros((len(names), len(pairs)), bool)
    answered = np.zeros_like(correct)
    per_observer: list[ObserverScore] = []
    for i, who in enumerate(names):
        main = [r for r in observers[who] if not r.get("practice")]
        for r in main:
            correct[i, col[r["pair_id"]]] = bool(r["correct"])
            answered[i, col[r["pair_id"]]] = True
        k, n = int(correct[i].sum()), int(answered[i].sum())
        lo, hi = wilson_interval(k, n)
        rts = [r["rt"] for r in main if isinstance(r.get("rt"), (int, float))]
        per_observer.append({"participant": who, "trials": n, "correct": k, "accuracy": k / n if n else None,
                             "ci_low": lo, "ci_high": hi, "p_value": binomial_p_value(k, n),
                             "median_rt_ms": float(np.median(rts)) if rts else None})
    acc = [float(o["accuracy"]) for o in per_observer if o["accuracy"] is not None]
    out: TwoAfcScore = {"observers": per_observer, "n_observers": len(names), "n_pairs": len(pairs),
                           "mean_accuracy": float(np.mean(acc)) if acc else None,
                           "min_accuracy": min(acc) if acc else None, "max_accuracy": max(acc) if acc else None}
    if design.get("paper_way"):  # the paper's numbers compare only with a study built as the paper built its own
        out["paper"] = {"mean_accuracy": 0.814, "range": [0.718, 0.886], "error_consistency": 0.587}
    if len(names) >= 2:
        ec = pairwise_consistency(correct, evaluated=answered, runs=names, n_boot=n_boot, seed=seed,
                                  subset="main trials", row="study")
        iu = np.triu_indices(len(names), 1)
        out["error_consistency"] = {"observers": names, "kappa": ec.kappa.tolist(), "ci_low": ec.ci_low.tolist(),
                                    "ci_high": ec.ci_high.tolist(), "mean_kappa": float(np.nanmean(ec.kappa[iu]))}
    by_trial = {t["pair_id"]: t for t in design["trials"]}
    images: dict[int, list[bool]] = {}
    for who in names:
        for r in observers[who]:
            if r.get("practice"):
                continue
            t = by_trial[r["pair_id"]]
            for sid in (t["trivial"], t["impossible"]):
                images.setdefault(sid, []).append(bool(r["correct"]))
    out["images"] = [{"id": sid, "difficulty": design["samples"][str(sid)]["difficulty"],
                      "k": design["samples"][str(sid)]["k"], "label": design["samples"][str(sid)]["label"],
                      "answers": len(v), "human_accuracy": float(np.mean(v))} for sid, v in sorted(images.items())]
    return out


def score_ratings(observers: Observers, design: Design) -> RatingsScore:
    """Experiment 2: per question and answer option, the answers' count and share per difficulty."""
    by_trial = {t["trial"]: t for t in design["trials"]}
    counts = {q: {o: dict.fromkeys(DIFFICULTIES, 0) for o in opts} for q, opts in RATING_OPTIONS.items()}
    for trials in observers.values():
        for r in trials:
            diff = by_trial[r["trial_number"]]["difficulty"]
            cat = r.get("categories")
            if isinstance(cat, (int, float)) and cat >= 0:
                counts["categories"]["5+" if cat >= 5 else str(int(cat))][diff] += 1
            for q in ("main_category", "odd"):
                if r.get(q) in RATING_OPTIONS[q]:
                    counts[q][r[q]][diff] += 1
    shares = {q: {o: ({d: c[d] / sum(c.values()) for d in DIFFICULTIES} if sum(c.values()) else None)
                  for o, c in per.items()} for q, per in counts.items()}
    return {"n_observers": len(observers), "counts": counts, "shares": shares, "questions": RATING_QUESTIONS}


# ------------------------------------------------------------------------------------------ output
def _figures(score: TwoAfcScore | RatingsScore, experiment: str, folder: Path) -> list[dict[str, str]]:
    import matplotlib
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    figs = []

    def save(fig: Any, name: str, caption: str) -> None:
        fig.savefig(folder / f"{name}.png", dpi=110)
        figs.append({"name": name, "png": f"figures/{name}.png", "caption": caption})

    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        if experiment == "2afc":
            s = cast(TwoAfcScore, score)
            obs = s["observers"]
            fig = Figure(figsize=(6.4, 0.3 * max(len(obs), 4) + 1.2), layout="constrained")
            ax = fig.subplots()
            y = np.arange(len(obs))[::-1]
            acc = np.array([o["accuracy"] if o["accuracy"] is not None else np.nan for o in obs])
            lo = np.array([o["ci_low"] for o in obs])
            hi = np.array([o["ci_high"] for o in obs])
            ax.errorbar(acc, y, xerr=[np.maximum(acc - lo, 0), np.maximum(hi - acc, 0)], fmt="o", color="#333")
            ax.axvline(0.5, color="#999", ls="--", label="chance")
            if "paper" in s:
                ax.axvline(0.814, color="#e6550d", ls=":", label="paper's mean (81.4 %)")
            ax.set_yticks(y, [o["participant"] for o in obs])
            ax.set_xlim(0, 1)
            ax.set_xlabel("accuracy: picked the image the networks got wrong (95 % Wilson interval)")
            ax.legend(fontsize=8)
            save(fig, "observers", "Accuracy of each observer with its 95 % interval.")
            im = s["images"]
            if im:
                fig = Figure(figsize=(6.4, 4), layout="constrained")
                ax = fig.subplots()
                k = np.array([x["k"] for x in im], float)
                jitter = np.random.default_rng(0).uniform(-0.15, 0.15, k.size)
                ax.scatter(k + jitter, [x["human_accuracy"] for x in im], s=12, alpha=0.6,
                           c=["#2b8cbe" if x["difficulty"] == "trivial" else "#d7301f" for x in im])
                ax.set_xlabel("k: networks correct on the image")
                ax.set_ylabel("human accuracy on trials with the image")
                ax.set_ylim(-0.05, 1.05)
                save(fig, "images", "Per image: human accuracy against the networks' k (blue trivial, red impossible).")
        else:
            r = cast(RatingsScore, score)
            fig = Figure(figsize=(13, 4), layout="constrained")
            axes = fig.subplots(1, 3)
            colors = {"trivial": "#2b8cbe", "in_between": "#969696", "impossible": "#d7301f"}
            for ax, (q, opts) in zip(axes, RATING_OPTIONS.items()):
                bottom = np.zeros(len(opts))
                for d in DIFFICULTIES:
                    vals = np.array([(r["shares"][q][o] or {}).get(d, 0.0) for o in opts])
                    ax.bar(opts, vals, bottom=bottom, color=colors[d], label=d.replace("_", "-"))
                    bottom += vals
                ax.set_title(RATING_QUESTIONS[q], fontsize=9)
                ax.set_ylim(0, 1)
                ax.set_ylabel("share of answers")
            axes[0].legend(fontsize=8)
            save(fig, "figure6", "Share of trivial, in-between and impossible images per answer option (the paper's "
                 "Figure 6).")
    return figs


def _page(summary: StudySummary) -> str:
    """The results page from the scored summary (a Jinja template with autoescaping)."""
    from lightning_ddd.report.templates import render

    return render("score.html.j2", {"summary": summary}, filters={"pct": percent, "p": _p_text},
                  package="lightning_ddd.study")


def _clean(x: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers, NaN and infinities as null."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def percent(v: float | None) -> str:
    """A share as ``"81.4 %"``; ``"–"`` when there is none (no trial answered)."""
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.1f} %"


def _p_text(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.2g}"


def score_study(results: Sequence[str | os.PathLike], study: str | os.PathLike, out: str | os.PathLike, *,
                force: bool = False, n_boot: int = 1000, seed: int = 0) -> StudySummary:
    """Score result files against a study folder; write ``index.html``, ``summary.json`` and figures.

    Raises:
        ResultsError: a bad results file (one line each).
        OutputError: ``out`` overlaps an input or is a folder ``study score`` did not make (without ``force``).
    """
    from lightning_ddd.outputs import atomic_folder, check_folder_output, check_not_input

    folder = Path(study)
    try:
        design: Design = json.loads((folder / "design.json").read_text())
    except (OSError, ValueError) as err:
        raise ResultsError(f"--study {str(folder)!r} is not a study folder made by `lightning-ddd study make` (its "
                           f"design.json cannot be read: {err}).") from None
    out = Path(out)
    check_not_input(out, [folder, *results])
    check_folder_output(out, "study score", force=force)
    observers, notes = load_observers(results, design)
    score: TwoAfcScore | RatingsScore = (score_2afc(observers, design, n_boot=n_boot, seed=seed)
                                         if design["experiment"] == "2afc" else score_ratings(observers, design))
    summary: StudySummary = {"study_id": design["study_id"], "experiment": design["experiment"],
                               "results": [str(p) for p in results], "notes": notes, "score": score,
                               "selection": design.get("selection", "extreme"),
                               "stimuli": design.get("stimuli", f"images from {design.get('images')}"),
                               "paper_way": bool(design.get("paper_way"))}
    rule = {"paper": "the paper's rule (a seeded uniform draw within the strict trivial and impossible samples at "
                     "the comparison epoch)",
            "extreme": "the most extreme samples (our option, not the paper's rule)"}.get(summary["selection"],
                                                                                          summary["selection"])
    summary["how_built"] = f"Images chosen by {rule}; shown: {summary['stimuli']}."
    if design["experiment"] == "2afc" and not summary["paper_way"]:
        summary["notes"].append("This study was not built the paper's way (its selection rule, strict classes, and "
                                "the networks' 224 x 224 centre crops), so the paper's 81.4 % and 0.587 are not "
                                "drawn as references.")
    with atomic_folder(out, "study score") as tmp:
        summary["figures"] = _figures(score, design["experiment"], tmp / "figures")
        (tmp / "summary.json").write_text(json.dumps(_clean(summary), indent=1, allow_nan=False))
        (tmp / "index.html").write_text(_page(summary))
    return summary
