"""Every recipe configuration parses and runs one tiny epoch on the CPU (FakeData or generated Gaussian data)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lightning_ddd import DecisionStore

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
sys.path.insert(0, str(RECIPES))

TINY = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.accelerator", "cpu",
        "--trainer.devices", "1", "--trainer.strategy", "auto", "--trainer.enable_progress_bar", "false",
        "--data.batch_size", "4", "--data.val_batch_size", "4", "--data.num_workers", "0"]


@pytest.mark.parametrize("config,extra", [
    ("cifar10", ["--data.fake", "true", "--data.fake_size", "8"]),
    ("cifar100", ["--data.fake", "true", "--data.fake_size", "8", "--model.arch", "densenet121"]),
    ("imagenet", ["--data.fake", "true", "--data.fake_size", "4", "--data.image_size", "64"]),
    ("gaussian", ["--data.gaussian_per_class", "[1, 1]", "--data.image_size", "32"]),
])
def test_recipe_runs_one_tiny_epoch(tmp_path, config, extra):
    import train

    args = ["fit", "--config", str(RECIPES / "configs" / f"{config}.yaml"), *TINY, *extra,
            "--recorder.dirpath", str(tmp_path / "stores"), "--recorder.run_name", "base",
            "--checkpoint.dirpath", str(tmp_path / "ckpt"), "--trainer.default_root_dir", str(tmp_path)]
    cli = train.main(args)
    s = DecisionStore(tmp_path / "stores" / "base.h5")
    np.testing.assert_array_equal(s.rows("val")["epoch"], [0, 1])
    n_val = {"cifar10": 8, "cifar100": 8, "imagenet": 4, "gaussian": 100}[config]
    assert s.info("val").num_samples == n_val and s.read("val", "evaluated").all()
    assert s.info("val").num_classes == cli.datamodule.num_classes
    assert (tmp_path / "ckpt" / "last.ckpt").exists()


def test_gaussian_dataset_follows_the_paper():
    from ddd_recipes.data import GaussianNoise

    ds = GaussianNoise(num_classes=100, per_class=2, size=64, seed=3, normalize=False)
    x0, y0 = ds[0]
    x9, y9 = ds[2 * 30]
    assert (y0, y9) == (0, 30)
    assert float(x0.std()) == 0 and abs(float(x0.mean()) * 255 - 128) < 0.6
    assert abs(float(x9.std()) * 255 - 30) < 1.5 and 0 <= float(x9.min()) and float(x9.max()) <= 1
    assert bool((ds[5][0] == ds[5][0]).all())  # a function of seed and index
    assert not bool((GaussianNoise(100, 2, 64, seed=4, normalize=False)[181][0] == ds[181][0]).all())


def test_missing_dataset_folder_names_the_layout(tmp_path):
    from ddd_recipes.data import RecipeData

    for name, part in (("cifar10", "cifar-10-batches-py"), ("imagenet", "ImageFolder layout")):
        with pytest.raises(FileNotFoundError, match=part):
            RecipeData(dataset=name, root=str(tmp_path / "nowhere")).setup()
    assert not (tmp_path / "nowhere").exists()  # nothing downloaded or created


def test_run_grid_dry_run_and_slurm(tmp_path):
    cfg = str(RECIPES / "configs" / "cifar10.yaml")
    out = subprocess.run([sys.executable, str(RECIPES / "run_grid.py"), cfg, "--out", str(tmp_path / "exp"),
                          "--dry-run", "--", "--data.root", "/data/cifar"], capture_output=True, text=True, check=True)
    commands = [ln for ln in out.stdout.splitlines() if not ln.startswith("#")]
    # base, init, order, lr x5, batch, optimizer, arch, 2 halves, combined, CUDA non-determinism x5
    assert len(commands) == 1 + 5 + 5 + 5 + 6 + 5
    assert any("--model.arch densenet121 --data.batch_size 64" in c for c in commands)
    assert all("--data.root /data/cifar" in c for c in commands)
    assert "--trainer.max_epochs 40" in commands[0]  # the base run trains 10 more epochs for "+10"
    subprocess.run([sys.executable, str(RECIPES / "run_grid.py"), cfg, "--out", str(tmp_path / "exp"), "--slurm",
                    str(tmp_path / "g.sbatch"), "--nodes", "2"], check=True, capture_output=True)
    text = (tmp_path / "g.sbatch").read_text()
    assert "#SBATCH --array=0-26" in text and "--run $RUN" in text and "--nodes=2" in text


def test_paper_models_recipe_lists_the_eleven_and_runs_on_a_folder(tmp_path, capsys):
    """Issue 24.4: the paper's 11 models, each mapped to a zoo spec that `evaluate` accepts, substitutes said;
    the same recipe on any image folder with the user's models writes the stores and a page about models."""
    import json
    import sys
    from pathlib import Path

    import matplotlib.image as mpimg
    import numpy as np

    sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
    import paper_models

    from lightning_ddd.evaluate import ModelSpec

    assert len(paper_models.PAPER_MODELS) == 11
    for m in paper_models.PAPER_MODELS:
        ModelSpec.parse(m.spec)
        assert m.exact or m.why
    assert paper_models.main(["--imagenet-val", str(tmp_path), "--out", str(tmp_path / "o"), "--dry-run",
                              "--replace", "CORnet-RT=torchscript:cornet.pt"]) == 0
    out = capsys.readouterr().out
    assert out.count("# ") == 11 and "substitute" in out and "--model torchscript:cornet.pt" in out
    assert "--model torchvision:alexnet" not in out and "lightning-ddd report" in out
    rng = np.random.default_rng(0)
    for i in range(6):
        folder = tmp_path / "images" / f"c{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        mpimg.imsave(folder / f"{i}.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    rc = paper_models.main(["--images", str(tmp_path / "images"), "--out", str(tmp_path / "mine"), "--batch-size",
                            "3", "--model", "torchvision:resnet18", "--model", "torchvision:squeezenet1_1"])
    assert rc == 0
    s = json.loads((tmp_path / "mine" / "report" / "summary.json").read_text())
    assert s["kind"] == "models" and s["n_runs"] == 2 and s["n_samples"] == 6
