"""``lightning-ddd evaluate``: evaluate given models once each on a dataset, one store per model.

The paper's first experiment compares models that were not trained by the user (pretrained networks, each
evaluated once on the validation set). This runs each model through Lightning's ``Trainer.validate`` with a
:class:`~lightning_ddd.DecisionRecorder` in evaluation mode (``evaluation={"model", "weights"}``: rows flagged
``EVALUATION``, never "before training"), so several GPUs, nodes and mixed precision work as in training.

Models (``--model``, repeatable):

* ``torchvision:NAME[:WEIGHTS]`` - torchvision's model zoo, e.g. ``torchvision:resnet50:IMAGENET1K_V2``; the
  weights' own evaluation transforms are used for an ImageFolder (weights come from the torch hub cache;
  nothing is downloaded when the cache has them);
* ``timm:NAME[:FILE]`` - a timm model (when timm is installed) with its pretrained weights from timm's cache
  (``NAME`` may carry timm's weight tag, ``resnet50.fb_swsl_ig1b_ft_in1k``), or from a local weights file;
  timm's own evaluation transforms for the model are used for an ImageFolder;
* ``ckpt:PATH:MODULE.CLASS`` - a Lightning checkpoint of the user's LightningModule class;
* ``torchscript:PATH`` - a TorchScript file.

Data (``--data``): ``imagefolder:DIR`` (torchvision's ``ImageFolder`` order, so sample ids match ``--images``)
or ``MODULE:FACTORY`` (a function returning a map-style dataset of ``(input, target)``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
from pathlib import Path
from typing import Any

from typing_extensions import override


class EvaluateError(ValueError):
    """A model or dataset that cannot be evaluated (one line)."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate: its kind, what names it, and its store's name."""

    kind: str
    target: str
    extra: str | None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """Parse ``KIND:TARGET[:EXTRA]``.

        Raises:
            EvaluateError: an unknown kind or a missing part.
        """
        kind, _, rest = text.partition(":")
        if kind not in ("torchvision", "timm", "ckpt", "torchscript") or not rest:
            raise EvaluateError(f"--model {text!r}: use torchvision:NAME[:WEIGHTS], timm:NAME[:FILE], "
                                "ckpt:PATH:MODULE.CLASS or torchscript:PATH.")
        if kind == "ckpt":
            path, sep, cls_path = rest.rpartition(":")
            if not sep or "." not in cls_path:
                raise EvaluateError(f"--model {text!r}: a checkpoint needs its LightningModule class, "
                                    "ckpt:PATH:MODULE.CLASS.")
            return cls(kind, path, cls_path)
        if kind in ("torchvision", "timm"):
            name, _, weights = rest.partition(":")
            return cls(kind, name, weights or None)
        return cls(kind, rest, None)

    @property
    def run_name(self) -> str:
        """The store's file name."""
        from lightning_ddd.recorder.naming import safe_name

        base = Path(self.target).stem if self.kind in ("ckpt", "torchscript") else self.target
        return safe_name(f"{self.kind}-{base}" + (f"-{self.extra}" if self.kind == "torchvision" and self.extra
                                                   else ""))


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


def load_model(spec: ModelSpec) -> tuple[Any, dict[str, str], Any]:
    """The ``torch.nn.Module`` in eval mode, its identity for the store, and its own eval transform (or None).

    Raises:
        EvaluateError: the model cannot be loaded (one line naming it).
    """
    try:
        if spec.kind == "torchvision":
            import torchvision

            weights = torchvision.models.get_model_weights(spec.target)[spec.extra] if spec.extra else None
            model = torchvision.models.get_model(spec.target, weights=weights)
            return model.eval(), {"model": f"torchvision:{spec.target}", "weights": spec.extra or "none (random)"}, \
                (weights.transforms() if weights is not None else None)
        if spec.kind == "timm":
            import timm

            if spec.extra is None:
                model = timm.create_model(spec.target, pretrained=True)
                identity = "timm pretrained" + (f" ({spec.target.partition('.')[2]})" if "." in spec.target else "")
            else:
                file = Path(spec.extra)
                if not file.is_file():
                    raise EvaluateError(f"--model timm:{spec.target}:{spec.extra}: no such weights file.")
                model = timm.create_model(spec.target, pretrained=True, pretrained_cfg_overlay={"file": str(file)})
                identity = _file_hash(file)
            cfg = timm.data.resolve_data_config({}, model=model)
            return model.eval(), {"model": f"timm:{spec.target}", "weights": identity}, \
                timm.data.create_transform(**cfg)
        path = Path(spec.target)
        if not path.is_file():
            raise EvaluateError(f"--model {spec.kind}:{spec.target}: no such file.")
        if spec.kind == "torchscript":
            import torch

            return torch.jit.load(str(path), map_location="cpu").eval(), {
                "model": f"torchscript:{path.name}", "weights": _file_hash(path)}, None
        module_name, _, class_name = (spec.extra or "").rpartition(".")
        module_cls = getattr(importlib.import_module(module_name), class_name)
        return module_cls.load_from_checkpoint(str(path), map_location="cpu").eval(), {
            "model": f"{module_name}.{class_name}", "weights": _file_hash(path)}, None
    except EvaluateError:
        raise
    except Exception as err:  # noqa: BLE001 - any loading failure is one line for this model
        raise EvaluateError(f"--model {spec.kind}:{spec.target}: cannot be loaded ({type(err).__name__}: {err}).") \
            from None


def load_dataset(text: str, transform: Any) -> Any:
    """``imagefolder:DIR`` (with ``transform``, else ImageNet's Resize 256 + CenterCrop 224 + normalisation)
    or ``MODULE:FACTORY`` (called with no argument).

    Raises:
        EvaluateError: the folder or factory cannot give a dataset.
    """
    kind, _, rest = text.partition(":")
    if kind == "imagefolder":
        import torchvision
        from torchvision import transforms as T

        if not Path(rest).is_dir():
            raise EvaluateError(f"--data imagefolder:{rest}: no such folder (one sub-folder per class).")
        tf = transform or T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                                     T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        return torchvision.datasets.ImageFolder(rest, transform=tf)
    module_name, sep, factory = text.rpartition(":")
    if not sep or not module_name:
        raise EvaluateError(f"--data {text!r}: use imagefolder:DIR or MODULE:FACTORY.")
    try:
        return getattr(importlib.import_module(module_name), factory)()
    except Exception as err:  # noqa: BLE001 - the user's factory: one line
        raise EvaluateError(f"--data {text!r}: the factory failed ({type(err).__name__}: {err}).") from None


def _wrap(model: Any) -> Any:
    """A LightningModule whose validation step returns the model's logits."""
    import lightning.pytorch as pl

    class Evaluated(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        @override
        def forward(self, x: Any) -> Any:
            return self.model(x)

        @override
        def validation_step(self, batch: Any, batch_idx: int) -> Any:
            return self(batch[0])

    return Evaluated()


def already_evaluated(store: Path) -> bool:
    """Whether ``store`` holds a committed evaluation row (a rerun skips that model)."""
    from lightning_ddd.store import DecisionStore, RowFlag

    if not store.exists():
        return False
    try:
        s = DecisionStore(store)
        return any(bool(int(f) & RowFlag.EVALUATION) for sp in s.splits for f in s.rows(sp)["flags"])
    except Exception:  # noqa: BLE001 - a damaged store is not "evaluated"
        return False


def evaluate_models(models: list[str], data: str, out: str | Path, *, batch_size: int = 128, workers: int = 0,
                    precision: Any = None, devices: Any = "auto", accelerator: str = "auto",
                    say: Any = print) -> dict[str, str]:
    """Evaluate each model once; one store per model in ``out``.

    Returns:
        ``{model: "evaluated" | "skipped (already evaluated)" | error line}``.
    """
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from lightning_ddd import DecisionRecorder

    out = Path(out)
    results: dict[str, str] = {}
    for text in models:
        try:
            spec = ModelSpec.parse(text)
            store = out / f"{spec.run_name}.h5"
            if already_evaluated(store):
                results[text] = "skipped (already evaluated)"
                say(f"{text}: already evaluated in {store}; skipped")
                continue
            if store.exists():
                raise EvaluateError(f"{store} exists and holds no evaluation (another run's store?); it is left as "
                                    "it is: move it away or choose another --out.")
            model, identity, transform = load_model(spec)
            dataset = load_dataset(data, transform)
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
            rec = DecisionRecorder(out, run_name=spec.run_name, evaluation=identity)
            trainer = pl.Trainer(callbacks=[rec], logger=False, enable_checkpointing=False,
                                 enable_model_summary=False, accelerator=accelerator, devices=devices,
                                 precision=precision, default_root_dir=str(out))
            say(f"{text}: evaluating on {len(dataset)} samples")
            trainer.validate(_wrap(model), loader, verbose=False)
            results[text] = "evaluated"
        except Exception as err:  # noqa: BLE001 - one model's failure (any kind) never stops the others
            why = str(err) if isinstance(err, EvaluateError) else f"{type(err).__name__}: {err}"
            results[text] = f"failed: {why}"
            say(f"{text}: failed: {why}")
    return results
