"""The ``lightning-ddd`` command line's parser: one small function per command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def _add_analysis_options(p: argparse.ArgumentParser, split_help: str | None = None) -> None:
    """The options shared by ``report`` and ``export``; ``split_help``: ``--split`` has no default (the command
    chooses) and this help.
    """
    p.add_argument("--split", default=None if split_help else "val",
                   help=split_help or "split to analyse (default: val)")
    p.add_argument("--row", type=int, default=None,
                   help="row position for cross-run comparisons, negative from the end (default: the latest epoch "
                        "every run recorded)")
    p.add_argument("--epoch", type=float, default=None,
                   help="compare runs at this epoch (default: the latest epoch every run recorded, or the "
                        "comparison_epoch of --conditions)")
    p.add_argument("--all-rows", action="store_true",
                   help="per-run columns and figures from every recorded row, not only up to the comparison epoch")
    p.add_argument("--tolerance", type=int, default=0,
                   help="t: trivial k >= M - t, impossible k <= t; 0 strict (default), 1 'all but one'")
    p.add_argument("--base", default=None, help="base run name (default: the first run)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--quiet", action="store_true", help="no progress messages")


def _add_info(sub: Any, handlers: dict[str, Handler]) -> None:
    """The ``info`` command's options."""
    p = sub.add_parser("info", help="describe stores: runs, splits, rows, samples, fields, metadata")
    p.add_argument("stores", nargs="+", help="store files, directories or glob patterns")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=handlers["cmd_info"])


def _add_plan(sub: Any, handlers: dict[str, Handler]) -> None:
    """The ``plan`` command's options."""
    p = sub.add_parser("plan", help="how many samples a kappa needs: expected 95 %% interval width, or n for a width")
    p.add_argument("--acc", type=float, nargs=2, required=True, metavar=("A1", "A2"), help="the two accuracies")
    p.add_argument("--kappa", type=float, required=True, help="the expected kappa")
    p.add_argument("--n", type=int, default=None, help="samples: print the expected 95 %% interval width")
    p.add_argument("--width", type=float, default=None,
                   help="target width of the expected 95 %% interval: print the samples needed (default: plan for "
                        "--power instead)")
    p.add_argument("--power", type=float, default=0.8,
                   help="plan for this chance that the 95 %% interval excludes 0, by simulation (default 0.8)")
    p.add_argument("--versus", type=float, default=None, metavar="KAPPA2",
                   help="plan to tell --kappa apart from this second kappa (two pairs of observers, each on its "
                        "own trials): trials per pair for --power to exclude 0 from the difference's interval")
    p.add_argument("--versus-acc", type=float, nargs=2, default=None, metavar=("B1", "B2"),
                   help="the second pair's accuracies (default: --acc)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulation")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=handlers["cmd_plan"])


def _add_repair(sub: Any, handlers: dict[str, Handler]) -> None:
    """The ``repair`` command's options."""
    p = sub.add_parser("repair", help="merge rows a recorder parked in <store>.pending/ into the store")
    p.add_argument("stores", nargs="+", help="store files, directories or glob patterns")
    p.set_defaults(func=handlers["cmd_repair"])


def _add_report(sub: Any, handlers: dict[str, Handler]) -> None:
    """The ``report`` command's options."""
    p = sub.add_parser("report", help="figures, summary.json, per-sample table and index.html for one or many runs")
    p.add_argument("stores", nargs="+", help="store files, directories or glob patterns")
    p.add_argument("--out", required=True, help="report folder (written atomically; never inside an input)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out folder that lightning-ddd report did not make")
    _add_analysis_options(p)
    p.add_argument("--conditions", default=None,
                   help="JSON file mapping run name -> condition, or 'auto' (run name without a trailing -N/_N)")
    p.add_argument("--aum-threshold", type=float, default=None, metavar="VALUE",
                   help="AUM cut-off drawn in the AUM figure (Pleiss et al. take the 99th percentile of threshold "
                        "samples' AUM; default 0)")
    p.add_argument("--different-data", default="half data", metavar="CONDITION",
                   help="the condition whose two runs trained on disjoint halves of the data, compared with each "
                        "other as the paper's 'different data' (default: 'half data', the grid's name)")
    p.add_argument("--label-errors", default=None, help=".npy 0/1 mask of known label errors (N,)")
    p.add_argument("--exclude-label-errors", action="store_true", help="drop label errors from cross-run statistics")
    p.add_argument("--reference", nargs="+", default=None,
                   help="stores whose k defines trivial / impossible (default: the runs themselves)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for intervals (default 1000)")
    p.add_argument("--per-run-limit", type=int, default=3, help="runs (base first) with per-run figures (default 3)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--null-draws", type=int, default=10_000,
                   help="null kappas per pair for Klein et al.'s test against independence (default 10000; 0 skips)")
    p.add_argument("--p-adjust", choices=("holm", "bh"), default="holm",
                   help="correction of the pairs' p-values: Holm (default) or Benjamini-Hochberg")
    p.add_argument("--images", default=None,
                   help="ImageFolder-style folder of the split's images, for stores without thumbnails")
    p.add_argument("--gallery-size", type=int, default=24, help="examples per gallery (default 24)")
    p.add_argument("--no-explorer", action="store_true", help="leave out the sample explorer's files")
    p.set_defaults(func=handlers["cmd_report"])


def _add_export(sub: Any, handlers: dict[str, Handler]) -> None:
    """The ``export`` command's options."""
    p = sub.add_parser("export", help="one row per sample: category, first-learned, forgetting, data map, AUM, k")
    p.add_argument("stores", nargs="+", help="store files, directories or glob patterns")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="output format (default csv)")
    p.add_argument("--out", default=None, help="output file (default ddd_samples.<format>)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out file that lightning-ddd export did not write")
    _add_analysis_options(p, split_help="split to export (default: the training split when every store recorded "
                          "one with record_train=True, where forgetting, data maps and AUM are defined; else val)")
    p.set_defaults(func=handlers["cmd_export"])


def _add_evaluate(sub: Any, handlers: dict[str, Handler]) -> None:
    """The ``evaluate`` command's options."""
    p = sub.add_parser("evaluate", help="evaluate given models once each on a dataset: one store per model")
    p.add_argument("--model", action="append", required=True,
                   help="repeatable: torchvision:NAME[:WEIGHTS], timm:NAME[:FILE], ckpt:PATH:MODULE.CLASS, "
                        "torchscript:PATH")
    p.add_argument("--data", required=True, help="imagefolder:DIR (torchvision's order) or MODULE:FACTORY")
    p.add_argument("--out", required=True, help="folder of the stores (one per model; evaluated models are skipped)")
    p.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    p.add_argument("--workers", type=int, default=0, help="data loader workers (default 0)")
    p.add_argument("--precision", default=None, help="Lightning precision, e.g. 16-mixed or bf16-mixed")
    p.add_argument("--devices", default="auto", help="Lightning devices (default auto: the GPUs when there are)")
    p.add_argument("--accelerator", default="auto", help="Lightning accelerator (default auto)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=handlers["cmd_evaluate"])


def _add_demo(sub: Any, handlers: dict[str, Handler]) -> None:
    """The ``demo`` command's options."""
    p = sub.add_parser("demo", help="train the paper's condition grid on sklearn's digits (CPU) and report")
    p.add_argument("--out", default="ddd-demo", help="output folder (default ddd-demo)")
    p.add_argument("--force", action="store_true",
                   help="write into an existing --out folder that lightning-ddd demo did not make")
    p.add_argument("--epochs", type=int, default=None, help="training epochs of the base condition")
    p.add_argument("--seed", type=int, default=0, help="experiment seed")
    p.add_argument("--quick", action="store_true", help="a reduced grid for a fast check")
    p.add_argument("--no-report", action="store_true", help="train and record only")
    p.add_argument("--json", action="store_true", help="print machine-readable results")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=handlers["cmd_demo"])


def _add_study(sub: Any, handlers: dict[str, Handler]) -> None:
    """The ``study`` command's options."""
    study = sub.add_parser("study", help="the paper's human study: build it from stores, score its results")
    ssub = study.add_subparsers(dest="study_command", required=True)
    p = ssub.add_parser("make", help="a jsPsych study folder (Experiment 1: 2AFC; Experiment 2: ratings)")
    p.add_argument("stores", nargs="+", help="store files, directories or glob patterns")
    p.add_argument("--out", required=True, help="study folder (written atomically; never inside an input)")
    p.add_argument("--force", action="store_true", help="replace an --out folder that study make did not make")
    p.add_argument("--experiment", choices=("2afc", "ratings"), default="2afc",
                   help="2afc: pairs of one trivial and one impossible image (default); ratings: three questions")
    p.add_argument("--split", default="val", help="split name (default val)")
    p.add_argument("--epoch", type=float, default=None, help="comparison epoch (default: latest common)")
    p.add_argument("--tolerance", type=int, default=0, help="t of trivial (k >= M - t) / impossible (k <= t)")
    p.add_argument("--trials", type=int, default=149, help="2afc: main trials (default 149, as the paper)")
    p.add_argument("--practice", type=int, default=4, help="2afc: practice trials first (default 4)")
    p.add_argument("--per-class", type=int, default=100, help="ratings: images per difficulty (default 100)")
    p.add_argument("--break-every", type=int, default=50, help="a break after this many trials (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw")
    p.add_argument("--images", default=None, help="ImageFolder-style folder of the split at full resolution")
    p.add_argument("--selection", choices=("paper", "extreme"), default="paper",
                   help="paper: a seeded uniform draw within the strict trivial / impossible samples at the "
                        "comparison epoch, as the paper did (default); extreme: the most extreme samples (ours)")
    p.add_argument("--view", default="256,224",
                   help="with --images: RESIZE,CROP shows what the networks saw, the shorter side resized, then "
                        "the central CROP x CROP pixels (default 256,224, the paper's); 'original' shows the "
                        "files uncropped")
    from lightning_ddd.study.jspsych import npm_install_command

    p.add_argument("--jspsych", default=None,
                   help="a local npm install of the pinned jsPsych packages, copied in (default: the CDN with "
                        f"integrity hashes); make it with: {npm_install_command()}")
    p.add_argument("--label-errors", default=None, help=".npy 0/1 mask: never show known label errors")
    p.set_defaults(func=handlers["cmd_study_make"])
    p = ssub.add_parser("score", help="score observers' result files against the study")
    p.add_argument("results", nargs="+", help="the CSV or JSON files the study page saved, one per observer")
    p.add_argument("--study", required=True, help="the folder study make wrote")
    p.add_argument("--out", required=True, help="results folder (summary.json, index.html, figures)")
    p.add_argument("--force", action="store_true", help="replace an --out folder that study score did not make")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for kappa intervals")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=handlers["cmd_study_score"])


def build_parser(handlers: dict[str, Handler]) -> argparse.ArgumentParser:
    """The argument parser of ``lightning-ddd``; ``handlers`` maps each ``cmd_*`` name to its function."""
    parser = argparse.ArgumentParser(
        prog="lightning-ddd",
        description="Per-sample decision dynamics and dichotomous data difficulty from lightning-ddd stores.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_info(sub, handlers)
    _add_plan(sub, handlers)
    _add_repair(sub, handlers)
    _add_report(sub, handlers)
    _add_export(sub, handlers)
    _add_evaluate(sub, handlers)
    _add_demo(sub, handlers)
    _add_study(sub, handlers)
    return parser
