"""Run by test_resume.py: train deterministically with checkpoints; optionally SIGKILL itself mid-run."""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import lightning.pytorch as pl  # noqa: E402
from helpers import trainer  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402

from lightning_ddd import DecisionRecorder  # noqa: E402
from lightning_ddd.demo.digits import DigitsDataModule  # noqa: E402
from lightning_ddd.demo.models import DigitsClassifier  # noqa: E402


class KillAfterRow(pl.Callback):
    """SIGKILL the process once row ``k + 1`` is written and before epoch k+1's checkpoint."""

    def __init__(self, k: int) -> None:
        self.k = k

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking and trainer.current_epoch == self.k:
            for cb in trainer.callbacks:  # make sure row k + 1 is on disk (rows are written in the background)
                if isinstance(cb, DecisionRecorder):
                    cb.flush()
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    out, name, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    kill_k = int(sys.argv[4]) if len(sys.argv) > 4 else -1
    pl.seed_everything(0)
    ckpt = ModelCheckpoint(dirpath=out / f"ckpt_{name}", save_last=True, every_n_epochs=1, save_top_k=-1)
    callbacks = [DecisionRecorder(out, run_name=name), ckpt]
    if mode == "kill":
        callbacks.insert(1, KillAfterRow(kill_k))
    t = trainer(out, callbacks, max_epochs=4, enable_checkpointing=True)
    ckpt_path = str(out / f"ckpt_{name}" / "last.ckpt") if mode == "resume" else None
    t.fit(DigitsClassifier(arch="mlp"), DigitsDataModule(batch_size=64), ckpt_path=ckpt_path)
