"""``lightning-ddd study make``: a study folder from stores (``index.html``, ``experiment.js``, ``design.js``,
``design.json``, ``images/`` and, with ``--jspsych``, ``jspsych/``) that runs offline from ``file://`` and
uploads unchanged to JATOS, Pavlovia or Cognition.run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ddd.analysis.comparison import CompareOptions, compare_runs
from lightning_ddd.analysis.difficulty import Difficulty, check_tolerance
from lightning_ddd.study import jspsych
from lightning_ddd.study.design import Pool, rating_trials, two_afc_trials
from lightning_ddd.study.documents import Design, Sample

EXPERIMENTS = ("2afc", "ratings")

TEXT: dict[str, str | list[str]] = {
    "instructions": [
        "<h2>Which image is harder?</h2><p>Several neural networks were trained to recognise the objects in "
        "photographs. In each trial you see two images. The networks recognised one of them correctly and got the "
        "other one wrong.</p><p>Pick the image you think the networks got <b>wrong</b>: the harder one.</p>",
        "<p>Press <b>F</b> or <b>&larr;</b> for the left image, <b>J</b> or <b>&rarr;</b> for the right one, or "
        "click it. Take the time you need; there are short breaks.</p><p>The first few trials are practice and "
        "tell you whether you were right.</p>"],
    "welcome_back": "<p>Welcome back: you continue where you left off; your earlier answers are kept.</p>",
    "main_start": "<p>Practice is over. The main part starts now; you will not see feedback any more.</p>",
    "question": "<p class='ddd-question'>Which image did the networks get <b>wrong</b>?</p>",
    "keys": "<p class='ddd-keys'>F / &larr; left &nbsp;&nbsp; J / &rarr; right &nbsp;&nbsp; or click</p>",
}
RATING_TEXT: dict[str, str | list[str]] = {
    "instructions": [
        "<h2>Describe the images</h2><p>You will see one image at a time and answer three short questions about "
        "it. There are no right or wrong answers.</p>"],
    "welcome_back": TEXT["welcome_back"],
    "main_start": "",
    "question": "",
    "keys": "",
    "rating_form": (
        "<p>How many different object categories are in the image? "
        "<input type='number' name='categories' min='0' max='99' step='1' required></p>"
        "<p>Is there a main category?<br>"
        "<label><input type='radio' name='main_category' value='no' required> no</label> "
        "<label><input type='radio' name='main_category' value='maybe'> maybe</label> "
        "<label><input type='radio' name='main_category' value='yes'> yes</label></p>"
        "<p>Is the presentation of the objects odd?<br>"
        "<label><input type='radio' name='odd' value='no' required> no</label> "
        "<label><input type='radio' name='odd' value='slightly'> slightly</label> "
        "<label><input type='radio' name='odd' value='very'> very</label></p>"),
}
CSS = """
body{font-family:system-ui,sans-serif}.ddd-choice{margin:1em;padding:.5em;background:#fff}
.ddd-image{width:256px;height:256px;object-fit:contain;image-rendering:RENDERING;display:block}
.ddd-question{font-size:1.2em}.ddd-keys{color:#666;font-size:.9em}.ddd-feedback{font-size:1.2em}
"""


@dataclasses.dataclass
class StudyOptions:
    """What ``study make`` builds.

    Attributes:
        experiment: ``"2afc"`` (Experiment 1) or ``"ratings"`` (Experiment 2).
        split: the recorded split.
        tolerance: t of the trivial / impossible rule (0 strict).
        epoch: comparison epoch (default: the latest every run recorded).
        trials: main 2AFC trials (pairs).
        practice: practice trials before them.
        per_class: ratings: images per difficulty.
        seed: seed of every draw.
        break_every: a break after this many main trials (0: none).
        images: an ImageFolder-style folder of the split at full resolution (else the stores' thumbnails, at
            most 64 px, contrast-stretched per image, drawn pixelated).
        selection: ``"paper"`` (the paper's rule: a seeded uniform draw within the strict trivial and
            impossible samples at the comparison epoch) or ``"extreme"`` (the most extreme samples).
        view: with ``images``, what the observers see: ``(resize, crop)`` = the shorter side resized to
            ``resize`` (bilinear), then the central ``crop`` x ``crop`` pixels, not normalised: what the
            networks saw (the paper: Resize 256, CenterCrop 224); None shows the original files.
        jspsych: a local npm install of the pinned jsPsych packages, copied into the folder (else the CDN).
        label_errors: optional (N,) mask of known label errors, never shown.
    """

    experiment: str = "2afc"
    split: str = "val"
    tolerance: int = 0
    epoch: float | None = None
    trials: int = 149
    practice: int = 4
    per_class: int = 100
    seed: int = 0
    break_every: int = 50
    images: str | None = None
    jspsych: str | None = None
    label_errors: np.ndarray | None = None
    selection: str = "paper"
    view: tuple[int, int] | None = (256, 224)

    def paper_way(self) -> bool:
        """Whether the study is built as the paper built its Experiment 1: its selection rule, strict classes,
        and the networks' 224 x 224 centre crops of the full-resolution images.
        """
        return (self.experiment == "2afc" and self.selection == "paper" and self.tolerance == 0
                and self.images is not None and self.view == (256, 224))


def network_view(path: Path, resize: int, crop: int) -> Any:
    """The image as a network saw it (torchvision's ``Resize(resize)`` then ``CenterCrop(crop)``), as a
    Pillow image: the shorter side scaled to ``resize`` (bilinear, antialiased), the central ``crop`` square.
    """
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        short, long = min(w, h), max(w, h)
        new_long = int(resize * long / short)  # torchvision's rounding of the long side
        size = (resize, new_long) if w <= h else (new_long, resize)
        if size != (w, h):
            im = im.resize(size, getattr(Image, "Resampling", Image).BILINEAR)
        left, top = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
        return im.crop((left, top, left + crop, top + crop))


def _pool(stores: Sequence[str], opts: StudyOptions) -> tuple[Pool, Any, Any, dict[str, Any]]:
    c = compare_runs(stores, CompareOptions(split=opts.split, epoch=opts.epoch, tolerance=opts.tolerance, n_boot=0,
                                            null_draws=0, significance=False, detail=0, different_data=None))
    runs = [r.trajectory for r in c.runs]  # rows up to the comparison epoch
    n_runs = len(runs)
    check_tolerance(n_runs, opts.tolerance)
    assert c.reference is not None and c.difficulty is not None
    k, labels, m = c.reference.k, c.difficulty.labels, c.matrix
    score = np.zeros(k.size)
    for cut in runs:
        score += (cut.correct & cut.evaluated).sum(axis=0)
    n = k.size
    from lightning_ddd.images import ThumbnailSource, folder_thumbnails, store_thumbnails

    if opts.images:
        found: ThumbnailSource | None = folder_thumbnails(opts.images, n)
    else:
        found, note = store_thumbnails([(t.name, t.path) for t in runs], opts.split, n)
    if found is None:
        raise ValueError(note.replace("to show them", "to use them"))
    source = found
    usable = source.mask.copy()
    if opts.label_errors is not None:
        if len(opts.label_errors) != n:
            raise ValueError(f"The label-error mask has {len(opts.label_errors)} entries; the runs have {n} samples.")
        usable &= ~np.asarray(opts.label_errors, bool)
    info = {"runs": [t.name for t in runs], "row": m.row, "n_runs": n_runs, "n_samples": n, "k": k,
            "targets": runs[0].targets}
    return Pool(labels, score, usable), source, runs, info


def _write_stimuli(tmp: Path, ids: list[int], samples: dict[str, Sample], source: Any, opts: StudyOptions) -> str:
    """Write each sample's stimulus into ``tmp/images`` (the networks' view, the original file, or the store's
    thumbnail); returns what was shown, in words.
    """
    from lightning_ddd.images import folder_images, save_image

    (tmp / "images").mkdir()
    if opts.images and opts.view is not None:
        files = folder_images(opts.images)
        for i in ids:
            name = f"images/{i}.png"
            network_view(files[i], *opts.view).save(tmp / name, format="PNG")
            samples[str(i)]["image"] = name
        return (f"what the networks saw: the images of {source.where}, shorter side resized to "
                f"{opts.view[0]} px, central {opts.view[1]} x {opts.view[1]} px, not normalised")
    if opts.images:
        files = folder_images(opts.images)
        for i in ids:
            name = f"images/{i}{files[i].suffix.lower()}"
            shutil.copyfile(files[i], tmp / name)
            samples[str(i)]["image"] = name
        return f"the original files of {source.where}, uncropped"
    for i, img in zip(ids, source.images(np.array(ids))):
        name = f"images/{i}.png"
        save_image(tmp / name, img)
        samples[str(i)]["image"] = name
    return (f"the stores' thumbnails ({source.where}; at most 64 px, each contrast-stretched to its "
            "own range), drawn pixelated, not the networks' full-resolution inputs")


def _write_page(tmp: Path, opts: StudyOptions) -> None:
    """The experiment's script and ``index.html`` (jsPsych local or from the CDN with integrity hashes)."""
    from importlib.resources import files as package_files

    from markupsafe import Markup

    from lightning_ddd.report.templates import render

    script = package_files("lightning_ddd.study").joinpath("experiment.js").read_text()
    (tmp / "experiment.js").write_text(script)
    tags = jspsych.copy_local(opts.jspsych, tmp) if opts.jspsych else jspsych.cdn_tags()
    title = "Which image is harder?" if opts.experiment == "2afc" else "Describe the images"
    css = CSS.replace("RENDERING", "auto" if opts.images else "pixelated")  # small thumbnails: no smoothing
    (tmp / "index.html").write_text(render("study.html.j2", {"title": title, "css": Markup(css),
                                                             "tags": [Markup(t) for t in tags]},
                                           package="lightning_ddd.study"))


def _samples(ids: list[int], pool: Pool, runs: Any, info: dict[str, Any], split: str) -> dict[str, Sample]:
    """Each shown sample's k, difficulty and label."""
    from lightning_ddd.images import stored_class_names

    names = stored_class_names([t.path for t in runs], split)
    labels = np.asarray(pool.labels)
    samples: dict[str, Sample] = {}
    for i in ids:
        target = int(info["targets"][i])
        samples[str(i)] = {"k": int(info["k"][i]), "difficulty": Difficulty(int(labels[i])).key,
                           "label": names[target] if names and 0 <= target < len(names) else str(target)}
    return samples


def make_study(stores: Sequence[str], out: str | os.PathLike, opts: StudyOptions | None = None, *,
               force: bool = False) -> Design:
    """Build a study folder.

    Returns:
        The design written to ``design.json``.

    Raises:
        DesignError: too few trivial or impossible samples (with images) for the trials asked for.
        ValueError: bad options, stores or image folder.
        OutputError: ``out`` overlaps an input or is a folder ``study make`` did not make (without ``force``).
    """
    from lightning_ddd.analysis.loading import find_stores
    from lightning_ddd.outputs import atomic_folder, check_folder_output, check_not_input

    opts = opts or StudyOptions()
    if opts.experiment not in EXPERIMENTS:
        raise ValueError(f"--experiment must be one of {EXPERIMENTS}, got {opts.experiment!r}.")
    out = Path(out)
    check_not_input(out, [*stores, *find_stores(stores)])
    check_folder_output(out, "study make", force=force)
    pool, source, runs, info = _pool(stores, opts)
    if opts.experiment == "2afc":
        trials = two_afc_trials(pool, opts.trials, opts.practice, opts.seed, opts.selection)
        ids = sorted({i for t in trials for i in (t["left"], t["right"])})
        text = TEXT
    else:
        trials = rating_trials(pool, opts.per_class, opts.seed, opts.selection)
        ids = sorted({t["sample_id"] for t in trials})
        text = RATING_TEXT
    samples = _samples(ids, pool, runs, info, opts.split)
    body = {"experiment": opts.experiment, "trials": trials, "samples": sorted(samples)}
    study_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    with atomic_folder(out, "study make") as tmp:
        stimuli = _write_stimuli(tmp, ids, samples, source, opts)
        design: Design = {
                  "study_id": study_id, "experiment": opts.experiment, "trials": trials, "samples": samples,
                  "break_every": opts.break_every, "seed": opts.seed, "tolerance": opts.tolerance,
                  "split": opts.split, "comparison": info["row"], "runs": info["runs"], "n_runs": info["n_runs"],
                  "n_samples": info["n_samples"], "images": source.where, "text": text,
                  "selection": opts.selection, "stimuli": stimuli, "paper_way": opts.paper_way(),
                  "label_errors_excluded": opts.label_errors is not None,
                  "jspsych": {a.package: a.version for a in jspsych.ASSETS}}
        (tmp / "design.json").write_text(json.dumps(design, indent=1))
        (tmp / "design.js").write_text("window.DDD_STUDY = " + json.dumps(design) + ";\n")
        _write_page(tmp, opts)
    return design
