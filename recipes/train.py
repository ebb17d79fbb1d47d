"""Train one run of a recipe through Lightning's configuration system.

Usage::

    python recipes/train.py fit --config recipes/configs/cifar10.yaml --data.root /data/cifar \
        --recorder.run_name base --recorder.dirpath runs/cifar10/stores

Every run records the untrained network (a complete sanity check) and every epoch with ``DecisionRecorder``
(``--recorder.*``), and saves ``last.ckpt`` every epoch (``--checkpoint.*``) so it can be resumed with
``--ckpt_path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ddd_recipes.data import RecipeData  # noqa: E402
from ddd_recipes.models import ImageClassifier  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.cli import LightningCLI  # noqa: E402

from lightning_ddd import DecisionRecorder  # noqa: E402


class RecipeCLI(LightningCLI):
    """LightningCLI with the recorder and a last-checkpoint callback always present and configurable."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001
        parser.add_lightning_class_args(DecisionRecorder, "recorder")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_top_k": 1,
                             "checkpoint.every_n_epochs": 1})
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")


def main(args: list[str] | None = None, run: bool = True) -> RecipeCLI:
    """Build (and by default run) the CLI."""
    return RecipeCLI(ImageClassifier, RecipeData, args=args, run=run, save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
