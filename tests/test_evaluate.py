"""Models not trained by this Trainer, each evaluated once (issue 24.1, 24.2): their own row kind, metadata,
``lightning-ddd evaluate`` with saved models, stores equal to an independent evaluation, resumable, one
model failing in one line without losing the others."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from eval_data import digits_val
from helpers import digits_loaders, reference_decisions, trainer
from typed_json import check

from lightning_ddd import DecisionRecorder, DecisionStore
from lightning_ddd.cli import main
from lightning_ddd.demo.models import DigitsClassifier
from lightning_ddd.report.summary_types import Summary
from lightning_ddd.store import RowFlag

sys.path.insert(0, str(Path(__file__).parent))  # eval_data importable by name, as a user's module would be


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Two models trained and saved here: a Lightning checkpoint and a TorchScript file (no download)."""
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for name, arch, seed in (("cnn", "cnn", 0), ("mlp", "mlp", 1), ("wide", "mlp", 2)):
        train, val = digits_loaders()
        model = DigitsClassifier(arch=arch, init_seed=seed, lr=0.05)
        t = trainer(folder, [], max_epochs=2, num_sanity_val_steps=0)
        t.fit(model, train, val)
        ckpt = folder / f"{name}.ckpt"
        t.save_checkpoint(ckpt)
        script = folder / f"{name}.pt"
        torch.jit.script(model.net.eval()).save(str(script))
        out[name] = (ckpt, script, model.eval())
    return folder, out


def _reference(model):
    ds = digits_val()
    x, y = ds.tensors
    with torch.no_grad():
        return reference_decisions(model(x).numpy(), y.numpy())


def test_evaluate_writes_one_store_per_model_equal_to_an_independent_evaluation(saved, tmp_path, capsys):
    folder, models = saved
    out = tmp_path / "zoo"
    argv = ["evaluate", "--data", "eval_data:digits_val", "--out", str(out), "--batch-size", "100", "--quiet",
            "--model", f"ckpt:{models['cnn'][0]}:lightning_ddd.demo.models.DigitsClassifier",
            "--model", f"torchscript:{models['mlp'][1]}"]
    assert main(argv) == 0
    stores = sorted(out.glob("*.h5"))
    assert [p.name for p in stores] == ["ckpt-cnn.h5", "torchscript-mlp.h5"]
    for store, name in zip(stores, ("cnn", "mlp")):
        s = DecisionStore(store)
        rows = s.rows("val")
        assert list(rows["flags"]) == [RowFlag.EVALUATION | RowFlag.VALIDATE_CALL]  # never "before training"
        ref = _reference(models[name][2])
        np.testing.assert_array_equal(s.read("val", "correct")[0], ref["correct"])
        np.testing.assert_array_equal(s.read("val", "pred")[0], ref["pred"])
        np.testing.assert_allclose(s.read("val", "loss")[0], ref["loss"], atol=1e-5)
        ev = s.metadata["evaluation"]
        assert ev["weights"].startswith("sha256:")
    assert DecisionStore(stores[0]).metadata["evaluation"]["model"] == "lightning_ddd.demo.models.DigitsClassifier"
    before = [p.stat().st_mtime_ns for p in stores]
    capsys.readouterr()
    assert main(argv) == 0  # resumable: both already evaluated, nothing rewritten
    assert "skipped (already evaluated)" in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in stores] == before


def test_one_failing_model_is_one_line_and_the_others_are_kept(saved, tmp_path, capsys):
    folder, models = saved
    out = tmp_path / "zoo"
    rc = main(["evaluate", "--data", "eval_data:digits_val", "--out", str(out), "--quiet",
               "--model", f"torchscript:{folder / 'missing.pt'}", "--model", f"torchscript:{models['cnn'][1]}"])
    assert rc == 1
    captured = capsys.readouterr()
    assert "missing.pt" in captured.out and "no such file" in captured.out
    assert "1 of 2 model(s) failed" in captured.err
    assert (out / "torchscript-cnn.h5").exists() and not (out / "torchscript-missing.h5").exists()
    assert main(["evaluate", "--data", "eval_data:broken", "--out", str(tmp_path / "b"), "--quiet",
                 "--model", f"torchscript:{models['cnn'][1]}"]) == 1
    assert "the data server is down" in capsys.readouterr().out
    assert main(["evaluate", "--data", "eval_data:text_items", "--out", str(tmp_path / "t"), "--quiet",
                 "--model", f"torchscript:{models['cnn'][1]}", "--model", f"torchscript:{models['mlp'][1]}"]) == 1
    out = capsys.readouterr().out  # an error inside the Trainer: one line per model, the loop goes on
    assert out.count(": failed: ") == 2
    assert main(["evaluate", "--data", "x", "--out", str(tmp_path / "c"), "--model", "onnx:model.onnx"]) == 1
    assert "torchvision:NAME" in capsys.readouterr().err


def test_an_evaluation_recorder_flags_its_row_and_refuses_fit(tmp_path):
    train, val = digits_loaders()
    model = DigitsClassifier()
    rec = DecisionRecorder(tmp_path, run_name="m", evaluation={"model": "mine", "weights": "v1"})
    trainer(tmp_path, [rec]).validate(model, val, verbose=False)
    s = DecisionStore(tmp_path / "m.h5")
    assert list(s.rows("val")["flags"]) == [RowFlag.EVALUATION | RowFlag.VALIDATE_CALL]
    assert s.metadata["evaluation"] == {"model": "mine", "weights": "v1"}
    with pytest.raises(ValueError, match="not a training run"):
        trainer(tmp_path / "f", [DecisionRecorder(tmp_path / "f", evaluation={"model": "x"})]).fit(model, train, val)
    with pytest.raises(ValueError, match="evaluation="):
        DecisionRecorder(tmp_path, evaluation={"weights": "no model"})


def test_a_torchvision_model_on_an_image_folder_in_torchvisions_order(tmp_path, capsys):
    """The zoo path without any download (no weights tag: random weights); ids follow ImageFolder's order."""
    import matplotlib.image as mpimg
    import torchvision

    rng = np.random.default_rng(0)
    for i in range(6):
        folder = tmp_path / "images" / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        mpimg.imsave(folder / f"img{i}.png", rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    out = tmp_path / "zoo"
    assert main(["evaluate", "--data", f"imagefolder:{tmp_path / 'images'}", "--out", str(out), "--quiet",
                 "--batch-size", "4", "--model", "torchvision:resnet18"]) == 0
    s = DecisionStore(out / "torchvision-resnet18.h5")
    assert s.info("val").num_samples == 6 and s.info("val").num_classes == 1000
    ds = torchvision.datasets.ImageFolder(str(tmp_path / "images"))
    np.testing.assert_array_equal(s.targets("val"), [t for _, t in ds.samples])
    assert s.metadata["evaluation"] == {"model": "torchvision:resnet18", "weights": "none (random)"}
    assert s.class_names("val") == ["class0", "class1"]


def test_the_report_speaks_of_models_and_its_numbers_equal_an_independent_evaluation(saved, tmp_path, capsys):

    folder, models = saved
    out = tmp_path / "zoo"
    assert main(["evaluate", "--data", "eval_data:digits_val", "--out", str(out), "--quiet",
                 "--model", f"ckpt:{models['cnn'][0]}:lightning_ddd.demo.models.DigitsClassifier",
                 "--model", f"torchscript:{models['mlp'][1]}",
                 "--model", f"ckpt:{models['wide'][0]}:lightning_ddd.demo.models.DigitsClassifier"]) == 0
    rep = tmp_path / "report"
    capsys.readouterr()
    assert main(["report", str(out), "--out", str(rep), "--quiet", "--bootstrap", "50", "--null-draws", "100"]) == 0
    assert "\n3 models: trivial " in capsys.readouterr().out  # the one-line summary speaks of models
    s = json.loads((rep / "summary.json").read_text())
    assert check(s, Summary) == []  # the models' page holds to summary.json's types too
    assert s["kind"] == "models" and set(s["run_kinds"].values()) == {"evaluated model"}
    assert s["comparison"]["epoch"] is None and s["row"] == "a single evaluation of each model"
    refs = [_reference(models[n][2])["correct"] for n in ("cnn", "wide", "mlp")]  # the stores' order: by name
    names = sorted(p.stem for p in out.glob("*.h5"))
    assert names == ["ckpt-cnn", "ckpt-wide", "torchscript-mlp"]
    k = np.sum(refs, axis=0)
    frac = s["difficulty"]["fractions"]
    assert frac["trivial"] == pytest.approx(np.mean(k == 3)) and frac["impossible"] == pytest.approx(np.mean(k == 0))
    page = (rep / "index.html").read_text()
    assert "3 model(s)" in page and "no comparison epoch" in page and "epoch 0" not in page
    assert not [f for f in s.get("figures", []) if "categories_" in str(f) or "kappa_to_base" in str(f)]
    # issue 24.3: the page leads with the models' difficulty; no per-run dynamics anywhere
    import re

    headings = re.findall(r"<h2>([^<]+)</h2>", page)
    assert headings == ["Findings", "Key figures", "Difficulty across the models", "Galleries", "Sample explorer",
                        "Tables and statistics"]
    assert "<section id='runs'>" not in page and "Always learned" not in page and "flip-flopping" not in page
    groups = s["galleries"]["groups"]
    assert groups and {g["name"] for g in groups} <= {"trivial", "in_between", "impossible"}
    assert all(g["scope"] == "across models" for g in groups)
    import csv

    rows = list(csv.DictReader((rep / "samples.csv").open()))
    assert "forgetting_events" not in rows[0] and "aum" not in rows[0]
    for name, ref in zip(("ckpt-cnn", "ckpt-wide", "torchscript-mlp"), refs):
        np.testing.assert_array_equal([int(r[f"correct:{name}"]) for r in rows], ref.astype(int))
    np.testing.assert_array_equal([int(r["k"]) for r in rows], k)


def test_trained_runs_and_evaluated_models_in_one_report_are_each_labelled(saved, tmp_path):

    folder, models = saved
    out = tmp_path / "zoo"
    assert main(["evaluate", "--data", "eval_data:digits_val", "--out", str(out), "--quiet",
                 "--model", f"torchscript:{models['cnn'][1]}", "--model", f"torchscript:{models['mlp'][1]}"]) == 0
    train, val = digits_loaders()
    trainer(tmp_path / "t", [DecisionRecorder(out, run_name="trained")], max_epochs=2,
            num_sanity_val_steps=-1).fit(DigitsClassifier(arch="mlp", init_seed=5, lr=0.05), train, val)
    rep = tmp_path / "report"
    assert main(["report", str(out), "--out", str(rep), "--quiet", "--bootstrap", "20", "--null-draws", "50",
                 "--base", "trained"]) == 0
    s = json.loads((rep / "summary.json").read_text())
    assert s["kind"] == "training runs and evaluated models"
    assert s["run_kinds"] == {"torchscript-cnn": "evaluated model", "torchscript-mlp": "evaluated model",
                              "trained": "training run"}
    page = (rep / "index.html").read_text()
    assert "id='run-kinds'" in page and "torchscript-cnn (evaluated model)" in page and "trained (training run)" in page
    assert "evaluated models at their single evaluation" in page and "<section id='runs'>" in page


def test_a_timm_model_with_weights_from_a_file_equals_an_independent_evaluation(tmp_path):
    """timm:NAME:FILE (issue 24.2): timm's model, the weights in a local file (nothing downloaded), timm's own
    evaluation transforms on an ImageFolder; the store equals the same model evaluated here by hand."""
    timm = pytest.importorskip("timm")
    import matplotlib.image as mpimg
    import torchvision

    rng = np.random.default_rng(1)
    for i in range(6):
        folder = tmp_path / "images" / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        mpimg.imsave(folder / f"img{i}.png", rng.integers(0, 256, (50, 40, 3), dtype=np.uint8))
    name = "mobilenetv3_small_050.lamb_in1k"
    torch.manual_seed(0)
    weights = tmp_path / "w.pth"
    torch.save(timm.create_model(name, pretrained=False).state_dict(), weights)
    out = tmp_path / "zoo"
    assert main(["evaluate", "--data", f"imagefolder:{tmp_path / 'images'}", "--out", str(out), "--quiet",
                 "--batch-size", "4", "--model", f"timm:{name}:{weights}"]) == 0
    (store,) = out.glob("*.h5")
    s = DecisionStore(store)
    model = timm.create_model(name, pretrained=False)
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    ds = torchvision.datasets.ImageFolder(str(tmp_path / "images"), transform=transform)
    with torch.no_grad():
        logits = torch.cat([model(x) for x, _ in torch.utils.data.DataLoader(ds, batch_size=4)])
    ref = reference_decisions(logits.numpy(), np.array([t for _, t in ds.samples]))
    np.testing.assert_array_equal(s.read("val", "pred")[0], ref["pred"])
    np.testing.assert_array_equal(s.read("val", "correct")[0], ref["correct"])
    np.testing.assert_allclose(s.read("val", "loss")[0], ref["loss"], rtol=1e-4, atol=1e-5)
    assert s.metadata["evaluation"] == {"model": f"timm:{name}", "weights": s.metadata["evaluation"]["weights"]}
    assert s.metadata["evaluation"]["weights"].startswith("sha256:")
