"""The ``lightning-ddd`` command line: ``info``, ``repair``, ``plan``, ``report``, ``export``, ``demo`` and ``study``.

``info``, ``report`` and ``export`` import neither torch nor Lightning, so they start fast and work on the
store of a run that is still training. User errors print one line with a hint and exit with code 1.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lightning_ddd.cli_common import UserError, progress_printer
from lightning_ddd.cli_plan import cmd_plan

if TYPE_CHECKING:
    from lightning_ddd.study.documents import RatingsScore, TwoAfcScore

__all__ = ["UserError", "build_parser", "cmd_plan", "main"]


# ---------------------------------------------------------------------------------------------- info
def cmd_info(a: argparse.Namespace) -> int:
    """``lightning-ddd info``: what each store holds."""
    from lightning_ddd.analysis import find_stores
    from lightning_ddd.store import open_store

    out = []
    for path in find_stores(a.stores):
        out.append(open_store(path).describe())
    if a.json:
        print(json.dumps(out, indent=1, default=str, allow_nan=False))
        return 0
    for d in out:
        print(f"{d['path']}: run {d['run_name']!r} (id {d['run_id']}), format version {d['format_version']}, "
              f"created {d['created']}")
        for name, s in d["splits"].items():
            epochs = s["epochs"]
            span = f"epochs {epochs[0]:g}..{epochs[-1]:g}" if epochs else "no rows yet"
            print(f"  split {name!r} ({s['kind']}): {s['num_rows']} rows ({span}), {s['num_samples']} samples, "
                  f"output width {s['num_classes']} ({s['distinct_targets']} distinct targets), "
                  f"fields {', '.join(s['fields'])}")
            partial = [(i, c) for i, c in enumerate(s["evaluated_per_row"]) if c < s["num_samples"]]
            if partial:
                shown = ", ".join(f"row {i}: {c}" for i, c in partial[:6]) + (" ..." if len(partial) > 6 else "")
                print(f"  {len(partial)} of {s['num_rows']} rows cover only part of the {s['num_samples']} samples "
                      f"({shown}; e.g. Trainer(limit_val_batches=...)); the others are 'not evaluated' there")
        if d["pending_rows"]:
            print(f"  {d['pending_rows']} row(s) pending in {d['path']}.pending/ (not yet in the store); run "
                  f"`lightning-ddd repair {d['path']}` to merge them")
        meta = d["metadata"]
        print(f"  model {meta.get('model_class')}, seed {meta.get('seed')}, world size {meta.get('world_size')}, "
              f"started {meta.get('start_time')}")
        if meta.get("hparams"):
            print(f"  hparams {json.dumps(meta['hparams'], default=str)}")
    return 0


# -------------------------------------------------------------------------------------------- repair
def cmd_repair(a: argparse.Namespace) -> int:
    """``lightning-ddd repair``: merge parked rows into their stores."""
    from lightning_ddd.analysis import find_stores
    from lightning_ddd.store import merge_pending

    for path in find_stores(a.stores):
        result = merge_pending(path)
        if result.waiting:
            free = shutil.disk_usage(Path(path).parent).free / 2**20
            raise UserError(f"{path}: {result.waiting} pending row(s) could not be merged yet (the folder is not "
                            f"writable, or the disk lacks room: {free:.1f} MiB free); run this again once it is.")
        print(f"{path}: merged {result.merged} pending row(s)" if result.merged else f"{path}: nothing pending")
        if result.refused:
            names = "; ".join(f"{name}: {why}" for name, why in result.refused)
            raise UserError(f"{path}: {len(result.refused)} side file(s) cannot be merged and were left in place "
                            f"({names}); move them out of {path}.pending/ once you have checked them.")
    return 0


# -------------------------------------------------------------------------------------------- report
def _check_ranges(a: argparse.Namespace) -> None:
    """Refuse options outside their range, one line each: the one place where every command's options are
    checked before anything is read or written (the number of runs a tolerance needs is checked once the runs
    are loaded).
    """
    for name, low in (("tolerance", 0), ("bootstrap", 0), ("per_run_limit", 1), ("seed", 0), ("epochs", 1),
                      ("null_draws", 0), ("gallery_size", 0), ("trials", 1), ("practice", 0), ("per_class", 1),
                      ("break_every", 0)):
        value = getattr(a, name, None)
        if value is not None and value < low:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} must be an integer >= {low}, got {value}.")
    images = getattr(a, "images", None)
    if images is not None and not Path(images).is_dir():
        raise UserError(f"--images {images!r} is not a folder; give an ImageFolder-style folder (one sub-folder per "
                        "class, the split's images inside, in the order the dataset reads them).")
    jspsych = getattr(a, "jspsych", None)
    if jspsych is not None and not Path(jspsych).is_dir():
        from lightning_ddd.study.jspsych import npm_install_command

        raise UserError(f"--jspsych {jspsych!r} is not a folder; install jsPsych there first: "
                        f"`{npm_install_command().replace('DIR', jspsych)}`.")
    epoch = getattr(a, "epoch", None)
    if epoch is not None and not (math.isfinite(epoch) and epoch >= 0):
        raise UserError(f"--epoch must be a finite number >= 0, got {epoch}.")


def _read_conditions(path_text: str) -> tuple[dict[str, str], float | None]:
    """Read a conditions file: ``{run: condition}`` or ``{"conditions": {run: condition}, "comparison_epoch": E}``.

    Returns:
        The conditions and the comparison epoch (None when the file names none).
    """
    path = Path(path_text)
    if not path.is_file():
        raise UserError(f"conditions file {path_text!r} does not exist (a JSON object run name -> condition, "
                        "or 'auto').")
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UserError(f"conditions file {path_text!r} is not valid JSON ({err}); it must be a JSON object "
                        "run name -> condition.") from None
    if isinstance(value, dict) and isinstance(value.get("conditions"), dict):  # with a comparison epoch
        epoch = value.get("comparison_epoch")
        if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or epoch < 0):
            raise UserError(f"conditions file {path_text!r}: 'comparison_epoch' must be a number >= 0, got {epoch!r}.")
        value = value["conditions"]
    else:
        epoch = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise UserError(f"conditions file {path_text!r} holds JSON {type(value).__name__}; it must be a JSON "
                        'object mapping run names to condition names, e.g. {"base": "base", "init-1": "init"}.')
    return value, (None if epoch is None else float(epoch))


def _read_label_errors(path_text: str) -> Any:
    import numpy as np

    try:
        mask = np.load(path_text, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f"cannot read the label-error mask {path_text!r} ({err or 'empty file'}); give a .npy "
                        "array of 0/1 (or booleans), one entry per sample.") from None
    mask = np.asarray(mask).reshape(-1)
    if mask.dtype.kind not in "biuf" or not np.isin(mask, (0, 1)).all():
        raise UserError(f"the label-error mask {path_text!r} must hold only 0/1 or booleans (dtype {mask.dtype}).")
    return mask.astype(bool)


def _options(a: argparse.Namespace) -> Any:
    from lightning_ddd.report.build import ReportOptions

    _check_ranges(a)
    conditions: Any = None
    named_epoch = None
    if a.conditions == "auto":
        conditions = "auto"
    elif a.conditions:
        conditions, named_epoch = _read_conditions(a.conditions)
    label_errors = _read_label_errors(a.label_errors) if a.label_errors else None
    epoch, source = a.epoch, "--epoch"
    if epoch is None and a.row is None and named_epoch is not None:
        epoch, source = named_epoch, f"the comparison epoch of {a.conditions}"
    return ReportOptions(split=a.split, row=a.row, epoch=epoch, epoch_source=source, all_rows=a.all_rows,
                         tolerance=a.tolerance, base=a.base,
                         conditions=conditions, label_errors=label_errors,
                         exclude_label_errors=a.exclude_label_errors, reference=a.reference,
                         n_boot=a.bootstrap, per_run_limit=a.per_run_limit, seed=a.seed, null_draws=a.null_draws,
                         p_adjust=a.p_adjust, gallery_size=a.gallery_size, images=a.images,
                         explorer=not a.no_explorer, different_data=a.different_data or None,
                         aum_threshold=a.aum_threshold,
                         progress=progress_printer(a.quiet or a.json))


def cmd_report(a: argparse.Namespace) -> int:
    """``lightning-ddd report``: the report folder of one or many runs."""
    from lightning_ddd.report.build import build_report

    summary = build_report(a.stores, a.out, _options(a), force=a.force)
    if a.json:
        print(json.dumps(summary, indent=1))
    else:
        d = summary.get("difficulty")
        print(f"report: {Path(a.out) / 'index.html'}")
        if d:
            f = d["fractions"]
            unit = "models" if summary.get("kind") == "models" else "runs"
            print(f"{summary['n_runs']} {unit}: trivial {100 * f['trivial']:.1f} %, in-between "
                  f"{100 * f['in_between']:.1f} %, impossible {100 * f['impossible']:.1f} % "
                  f"(t = {summary['tolerance']})")
    return 0


# -------------------------------------------------------------------------------------------- export
def _export_split(stores: Sequence[str], say: Any) -> str:
    """The training split when every store recorded the same one, else ``val``; says which and why."""
    from lightning_ddd.analysis import find_stores
    from lightning_ddd.analysis.loading import training_split

    names = {training_split(p) for p in find_stores(stores)}
    if len(names) == 1 and None not in names:
        (name,) = names
        say(f"split {name!r}: the training presentations (record_train=True), where forgetting events, data maps "
            "and AUM are defined; --split val for the validation rows")
        return str(name)
    say("split 'val'" + (": not every store recorded a training split (record_train=True)" if names != {None}
                         else ": no store recorded a training split (record_train=True), so forgetting, "
                         "confidence and AUM are of validation rows"))
    return "val"


def cmd_export(a: argparse.Namespace) -> int:
    """``lightning-ddd export``: one row per sample of the base run."""
    from lightning_ddd.analysis import find_stores, load_runs
    from lightning_ddd.analysis.comparison import CompareOptions, compare_runs
    from lightning_ddd.outputs import atomic_file, check_file_output, check_not_input, made_by_export
    from lightning_ddd.report.table import base_table, write_table

    _check_ranges(a)
    say = progress_printer(a.quiet or a.json)
    out = Path(a.out) if a.out else Path(f"ddd_samples.{a.format}")
    check_not_input(out, [*a.stores, *find_stores(a.stores)])
    check_file_output(out, force=a.force, recognise=made_by_export(out))
    split = a.split or _export_split(a.stores, say)
    options = CompareOptions(split=split, row=a.row, epoch=a.epoch, tolerance=a.tolerance, base=a.base,
                             n_boot=0, null_draws=0, significance=False, detail=1, different_data=None,
                             all_rows=a.all_rows)
    try:
        c = compare_runs(a.stores, options)
    except ValueError:
        n_runs = len(load_runs(a.stores, split, fields=()))
        if a.tolerance > 0 and n_runs < 2 * a.tolerance + 3:
            raise UserError(f"--tolerance {a.tolerance} needs at least {2 * a.tolerance + 3} runs, got {n_runs}: "
                            f"pass --tolerance {max(0, (n_runs - 3) // 2)} or fewer, or add runs.") from None
        raise
    n_runs = len(c.names)
    say(f"exporting {n_runs} runs (per-sample columns of {c.base!r})")
    say(f"runs compared at {c.matrix.row}" + ("" if a.row is not None or a.epoch is not None
                                              else " (the latest epoch every run recorded)")
        + ("; per-sample columns from all rows" if a.all_rows else "; per-sample columns from the rows up to it"))
    if c.difficulty is None:
        say(f"no difficulty column: trivial / impossible need at least 3 runs, got {n_runs}")
    table = base_table(c)
    with atomic_file(out) as tmp:
        write_table(table, tmp, a.format)
    if a.json:
        print(json.dumps({"path": str(out), "rows": int(c.n_samples), "runs": list(c.names), "base": c.base,
                          "comparison": c.matrix.row, "columns": list(table)}))
    else:
        print(f"wrote {c.n_samples} samples to {out}")
    return 0


# ------------------------------------------------------------------------------------------ evaluate
def cmd_evaluate(a: argparse.Namespace) -> int:
    """``lightning-ddd evaluate``: one store per given model, each evaluated once."""
    from lightning_ddd.evaluate import EvaluateError, ModelSpec, evaluate_models

    if a.batch_size < 1 or a.workers < 0:
        raise UserError(f"--batch-size must be >= 1 and --workers >= 0, got {a.batch_size} and {a.workers}.")
    for text in a.model:
        try:
            ModelSpec.parse(text)
        except EvaluateError as err:
            raise UserError(str(err)) from None
    results = evaluate_models(a.model, a.data, a.out, batch_size=a.batch_size, workers=a.workers,
                              precision=a.precision, devices=a.devices, accelerator=a.accelerator,
                              say=progress_printer(a.quiet))
    failed = {m: r for m, r in results.items() if r.startswith("failed")}
    for model, result in results.items():
        print(f"{model}: {result}")
    if failed:
        print(f"lightning-ddd: error: {len(failed)} of {len(results)} model(s) failed; the others' stores are in "
              f"{a.out} (rerun to retry: evaluated models are skipped).", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------- demo
def cmd_demo(a: argparse.Namespace) -> int:
    """``lightning-ddd demo``: the CPU demo of the paper's experiment."""
    from lightning_ddd.demo.experiment import run_demo
    from lightning_ddd.outputs import check_folder_output, mark_folder

    _check_ranges(a)
    check_folder_output(a.out, "demo", force=a.force)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    mark_folder(a.out, "demo")  # a rerun continues it (finished runs are skipped)
    result = run_demo(a.out, epochs=a.epochs, quick=a.quick, seed=a.seed, progress=progress_printer(a.quiet),
                      report=not a.no_report)
    if a.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        print(result["text"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lightning-ddd``."""
    from lightning_ddd import cli_parser

    handlers = {name: f for name, f in globals().items() if name.startswith("cmd_") and callable(f)}
    return cli_parser.build_parser(handlers)


def _view(text: str) -> tuple[int, int] | None:
    """``--view RESIZE,CROP`` or ``original``."""
    if text == "original":
        return None
    try:
        resize, crop = (int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--view takes RESIZE,CROP (e.g. 256,224) or 'original', got {text!r}.") from None
    if not 1 <= crop <= resize:
        raise UserError(f"--view {text}: the crop must be between 1 and the resized shorter side ({resize}).")
    return resize, crop


def cmd_study_make(a: argparse.Namespace) -> int:
    """``lightning-ddd study make``: a human-study folder from stores."""
    from lightning_ddd.study.make import StudyOptions, make_study

    _check_ranges(a)
    opts = StudyOptions(experiment=a.experiment, split=a.split, tolerance=a.tolerance, epoch=a.epoch,
                        selection=a.selection, view=_view(a.view),
                        trials=a.trials, practice=a.practice, per_class=a.per_class, seed=a.seed,
                        break_every=a.break_every, images=a.images, jspsych=a.jspsych,
                        label_errors=_read_label_errors(a.label_errors) if a.label_errors else None)
    design = make_study(a.stores, a.out, opts, force=a.force)
    n = len(design["trials"])
    print(f"study {design['study_id']} ({design['experiment']}, {n} trials, images from {design['images']}): "
          f"{Path(a.out) / 'index.html'}" + ("" if a.jspsych else " (jsPsych from the CDN; --jspsych DIR for offline)"))
    return 0


def cmd_study_score(a: argparse.Namespace) -> int:
    """``lightning-ddd study score``: score a study's result files."""
    from lightning_ddd.study.score import percent, score_study

    _check_ranges(a)
    summary = score_study(a.results, a.study, a.out, force=a.force, n_boot=a.bootstrap)
    if a.json:
        print(json.dumps(summary, indent=1, default=str))
        return 0
    if summary["experiment"] == "2afc":
        s = cast("TwoAfcScore", summary["score"])
        ec = s["error_consistency"]["mean_kappa"] if "error_consistency" in s else None
        lo, hi = s.get("min_accuracy"), s.get("max_accuracy")
        span = f"{100 * lo:.1f} to {100 * hi:.1f} %" if lo is not None and hi is not None else "–"
        print(f"{s['n_observers']} observers: mean accuracy {percent(s.get('mean_accuracy'))} (range {span})"
              + (f"; mean error consistency {ec:.3f}" if ec is not None else ""))
    else:
        r = cast("RatingsScore", summary["score"])
        print(f"{r['n_observers']} observers rated {len(r['counts'])} questions")
    for note in summary["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(f"results: {Path(a.out) / 'index.html'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from lightning_ddd.outputs import OutputError
    from lightning_ddd.store.errors import StoreError

    try:
        return int(args.func(args))
    except (UserError, OutputError) as err:
        msg = str(err)
    except FileNotFoundError as err:
        msg = f"{err.args[0] if err.args else err} Check the path (files, directories and globs are accepted)."
    except StoreError as err:
        msg = str(err)
    except ModuleNotFoundError as err:
        msg = f"{err} (a missing optional dependency; see the README's install line)"
    except (ValueError, KeyError, OSError) as err:
        msg = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    print(f"lightning-ddd: error: {msg}", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
