"""``--images DIR``: an ImageFolder-style folder gives the report's galleries and explorer and the study their
images when the stores hold no thumbnails; a folder of another size is one clear line."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
from synthetic_stores import write_runs

from lightning_ddd.cli import main

N = 60


def _image_folder(root, n=N):
    """Class folders of PNGs in torchvision's ImageFolder order: position = sample id; returns the images."""
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (n, 20, 16, 3), dtype=np.uint8)
    for i in range(n):
        folder = root / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        mpimg.imsave(folder / f"img{i:04d}.png", images[i])
    order = sorted(range(n), key=lambda i: (f"class{i % 3}", f"img{i:04d}.png"))
    return images[order]  # by sample id


def test_report_and_study_take_images_from_a_folder(tmp_path, capsys):
    stores = write_runs(tmp_path / "stores", ["a", "b", "c"], n=N)
    by_id = _image_folder(tmp_path / "images")
    out = tmp_path / "report"
    assert main(["report", str(stores), "--out", str(out), "--bootstrap", "20", "--null-draws", "0", "--quiet",
                 "--images", str(tmp_path / "images")]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["images"]["source"].startswith("the folder")
    shown = [x for g in s["galleries"]["groups"] for x in g["samples"]]
    assert shown and all(x["image"] for x in shown)
    for x in shown:
        img = mpimg.imread(out / x["image"])
        np.testing.assert_array_equal(np.round(img[..., :3] * 255).astype(np.uint8), by_id[x["id"]])
    assert (out / "explorer" / "s-0000.png").is_file()
    # the study shows what the networks saw: torchvision's Resize(256) + CenterCrop(224) of each file
    from PIL import Image
    from torchvision import transforms

    from lightning_ddd.images import folder_images

    files = folder_images(tmp_path / "images")
    view = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
    study = tmp_path / "study"
    assert main(["study", "make", str(stores), "--out", str(study), "--images", str(tmp_path / "images"),
                 "--trials", "2", "--practice", "0"]) == 0
    d = json.loads((study / "design.json").read_text())
    assert d["selection"] == "paper" and d["paper_way"] and "what the networks saw" in d["stimuli"]
    for sid, sample in d["samples"].items():
        got = np.asarray(Image.open(study / sample["image"]).convert("RGB"))
        want = np.asarray(view(Image.open(files[int(sid)]).convert("RGB")))
        assert got.shape == (224, 224, 3)
        np.testing.assert_array_equal(got, want)
    assert "image-rendering:auto" in (study / "index.html").read_text()
    # --view original copies the full-resolution files
    study = tmp_path / "study-original"
    assert main(["study", "make", str(stores), "--out", str(study), "--images", str(tmp_path / "images"),
                 "--trials", "2", "--practice", "0", "--view", "original"]) == 0
    d = json.loads((study / "design.json").read_text())
    assert not d["paper_way"] and "uncropped" in d["stimuli"]
    for sid, sample in d["samples"].items():
        img = mpimg.imread(study / sample["image"])
        np.testing.assert_array_equal(np.round(img[..., :3] * 255).astype(np.uint8), by_id[int(sid)])


def test_without_thumbnails_the_page_says_how_to_get_images(tmp_path, capsys):
    stores = write_runs(tmp_path / "stores", ["a", "b"], n=N)
    out = tmp_path / "report"
    assert main(["report", str(stores), "--out", str(out), "--bootstrap", "20", "--null-draws", "0", "--quiet"]) == 0
    page = (out / "index.html").read_text()
    assert "No store holds thumbnails" in page and "--images DIR" in page
    _image_folder(tmp_path / "few", n=N - 5)
    assert main(["report", str(stores), "--out", str(tmp_path / "r2"), "--quiet", "--images",
                 str(tmp_path / "few")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"holds {N - 5} images, but the split has {N} samples" in err
    assert not (tmp_path / "r2").exists()
