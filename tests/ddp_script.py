"""Run by test_ddp.py as a subprocess: plain strategy="ddp" re-launches this script for rank 1."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import lightning.pytorch as pl  # noqa: E402
from helpers import FileReference, digits_loaders, trainer, val_tensors  # noqa: E402

from lightning_ddd import DecisionRecorder  # noqa: E402
from lightning_ddd.demo.models import DigitsClassifier  # noqa: E402

if __name__ == "__main__":
    out = Path(sys.argv[1])
    (out / "ref").mkdir(parents=True, exist_ok=True)
    pl.seed_everything(0)
    x, y = val_tensors()
    train, val = digits_loaders(val_batch_size=64)
    t = trainer(out, [DecisionRecorder(out, run_name="ddp"), FileReference(out / "ref", x, y)],
                strategy="ddp", devices=2, max_epochs=2)
    t.fit(DigitsClassifier(), train, val)
