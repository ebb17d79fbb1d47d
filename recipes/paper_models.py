"""The paper's first experiment (its Figures 1 and 2) on your ImageNet validation folder: the 11 models,
each evaluated once, then one report about them.

Usage::

    python recipes/paper_models.py --imagenet-val /data/imagenet/val --out paper-models/ [--dry-run]
    python recipes/paper_models.py --images /my/folder --model torchvision:resnet50:IMAGENET1K_V2 ... --out mine/

Runs ``lightning-ddd evaluate`` (one store per model; resumable: models already evaluated are skipped) and
then ``lightning-ddd report`` on the stores; the page speaks of models, leads with the k histogram against
the binomial (Figure 2) and trivial / in-between / impossible, strict and all but one (Figure 1). Weights
come from torchvision's and timm's caches (download them once on a machine with internet, or copy the cache).

The paper's 11 models (``../shared/paper-data/README.md``) and what this recipe evaluates for each: six have
an exact zoo equivalent; five exist only as their authors' checkpoints, so the recipe uses the closest zoo
model in spirit and says so (:data:`PAPER_MODELS`). Pass your own checkpoints of the originals with
``--model ckpt:...`` or ``--model torchscript:...`` to replace a substitute (``--replace NAME=SPEC``).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys


@dataclasses.dataclass(frozen=True)
class PaperModel:
    """One of the paper's 11 models and the zoo model evaluated for it.

    Attributes:
        paper: the paper's name of the model.
        spec: the ``lightning-ddd evaluate --model`` spec used.
        exact: the zoo has the paper's model (False: a substitute).
        why: for a substitute, why this one.
    """

    paper: str
    spec: str
    exact: bool
    why: str = ""


PAPER_MODELS: tuple[PaperModel, ...] = (
    PaperModel("ResNet-152", "torchvision:resnet152:IMAGENET1K_V1", True),
    PaperModel("SqueezeNet 1.1", "torchvision:squeezenet1_1:IMAGENET1K_V1", True),
    PaperModel("ViT-B/16", "timm:vit_base_patch16_224.orig_in21k_ft_in1k", True),
    PaperModel("HRNet-W44", "timm:hrnet_w44.ms_in1k", True),
    PaperModel("ResNet-50 SWSL", "timm:resnet50.fb_swsl_ig1b_ft_in1k", True),
    PaperModel("CLIP", "timm:vit_base_patch32_clip_224.openai_ft_in1k", False,
               "CLIP's ViT-B/32 image tower fine-tuned on ImageNet; the paper used CLIP zero-shot, which needs the "
               "text encoder and is not an ImageNet classifier in either zoo"),
    PaperModel("CORnet-RT", "torchvision:alexnet:IMAGENET1K_V1", False,
               "CORnet (a shallow, brain-inspired recurrent network) is in neither zoo; AlexNet is the closest "
               "shallow classic network"),
    PaperModel("BagNet-33", "torchvision:resnet50:IMAGENET1K_V1", False,
               "BagNet-33 (a ResNet-50 restricted to 33 px receptive fields) is in neither zoo; its backbone, the "
               "standard ResNet-50, is"),
    PaperModel("ResNet-50 L2 eps=1 (adversarially robust)", "timm:inception_v3.tf_adv_in1k", False,
               "the robustness library's adversarially trained ResNet-50 is in neither zoo; timm's adversarially "
               "trained Inception-v3 is the closest robust model"),
    PaperModel("ResNet-50 trained on Stylized-ImageNet", "torchvision:resnet50:IMAGENET1K_V2", False,
               "Geirhos et al.'s shape-biased ResNet-50 is in neither zoo; torchvision's ResNet-50 trained with "
               "strong augmentation stands in for a differently trained ResNet-50"),
    PaperModel("SimCLR ResNet-50x1", "timm:resnet50.fb_ssl_yfcc100m_ft_in1k", False,
               "SimCLR's self-supervised ResNet-50 is in neither zoo; Facebook's semi-supervised (YFCC100M) "
               "ResNet-50 is the closest model learned mostly without ImageNet labels"),
)


def commands(data: str, out: str, specs: list[str], *, images: str | None, batch_size: int,
             precision: str | None) -> list[list[str]]:
    """The two commands: evaluate every model, then report on the stores."""
    evaluate = ["lightning-ddd", "evaluate", "--data", data, "--out", f"{out}/stores", "--batch-size",
                str(batch_size)]
    if precision:
        evaluate += ["--precision", precision]
    for spec in specs:
        evaluate += ["--model", spec]
    report = ["lightning-ddd", "report", f"{out}/stores", "--out", f"{out}/report"]
    if images:
        report += ["--images", images]
    return [evaluate, report]


def _specs(a: argparse.Namespace) -> list[str]:
    if a.model:
        return list(a.model)
    chosen = {m.paper: m.spec for m in PAPER_MODELS}
    for item in a.replace or []:
        name, sep, spec = item.partition("=")
        if not sep or name not in chosen:
            raise SystemExit(f"paper_models.py: error: --replace takes PAPER_NAME=SPEC with a name from "
                             f"{sorted(chosen)}, got {item!r}.")
        chosen[name] = spec
    return list(chosen.values())


def main(argv: list[str] | None = None) -> int:
    """Print (``--dry-run``) or run the two commands."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--imagenet-val", help="ImageNet validation folder (ImageFolder layout, 1,000 class folders)")
    where.add_argument("--images", help="any ImageFolder-style folder, with --model for your own models")
    p.add_argument("--out", required=True, help="folder for stores/ and report/")
    p.add_argument("--model", action="append", help="evaluate these models instead of the paper's list")
    p.add_argument("--replace", action="append", metavar="PAPER_NAME=SPEC",
                   help="replace one of the paper's models (e.g. a substitute by your checkpoint of the original)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--precision", default=None, help="Trainer precision, e.g. 16-mixed on a GPU")
    p.add_argument("--dry-run", action="store_true", help="print the commands and the model list, run nothing")
    a = p.parse_args(argv)
    folder = a.imagenet_val or a.images
    if a.images and not a.model:
        raise SystemExit("paper_models.py: error: --images is for your own models: add --model SPEC (one per model).")
    specs = _specs(a)
    cmds = commands(f"imagefolder:{folder}", a.out, specs, images=folder, batch_size=a.batch_size,
                    precision=a.precision)
    if a.dry_run:
        if not a.model:
            for m in PAPER_MODELS:
                print(f"# {m.paper}: {m.spec}" + ("" if m.exact else f"  (substitute: {m.why})"))
        for cmd in cmds:
            print(shlex.join(cmd))
        return 0
    from pathlib import Path

    from lightning_ddd.cli import main as ddd

    rc = ddd(cmds[0][1:])  # a model that fails is one line; the others' stores are kept
    if not any(Path(a.out, "stores").glob("*.h5")):
        return rc or 1
    return max(rc, ddd(cmds[1][1:]))


if __name__ == "__main__":
    sys.exit(main())
