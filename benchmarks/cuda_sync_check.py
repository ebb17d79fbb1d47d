"""CUDA check: the recorder's per-batch code never synchronises the host with the GPU.

1. ``torch.cuda.set_sync_debug_mode("error")`` is switched on only inside the recorder's per-batch code
   (its forward hook and its batch-start / batch-end hooks, validation and training split) and off again
   before any epoch-end hook: any synchronising CUDA call there raises.
2. Over one epoch (training with ``record_train=True`` and validation), ``"warn"``-mode synchronisations
   during the batch loops are counted with and without the recorder (single GPU, fp32, no progress-bar
   metrics); the counts must be equal. The recorder's one transfer per epoch happens at epoch end,
   outside the counted window.

Under 3 minutes on one GPU; without a GPU it prints a message and exits 0.

Usage: python benchmarks/cuda_sync_check.py
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
import warnings

import torch


def main() -> int:
    if not torch.cuda.is_available():
        print("cuda_sync_check: no CUDA GPU here; skipped (run it on a GPU machine).")
        return 0
    import lightning.pytorch as pl
    import torch.nn.functional as F
    import torchvision
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_ddd import DecisionRecorder, WandbOptions, WithIndex

    @contextlib.contextmanager
    def sync_errors():
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode("default")

    class StrictRecorder(DecisionRecorder):
        def _forward_hook(self, *args):
            with sync_errors():
                return super()._forward_hook(*args)

        def on_validation_batch_start(self, *args, **kwargs):
            with sync_errors():
                return super().on_validation_batch_start(*args, **kwargs)

        def on_validation_batch_end(self, *args, **kwargs):
            with sync_errors():
                return super().on_validation_batch_end(*args, **kwargs)

        def on_train_batch_start(self, *args, **kwargs):
            with sync_errors():
                return super().on_train_batch_start(*args, **kwargs)

        def on_train_batch_end(self, *args, **kwargs):
            with sync_errors():
                return super().on_train_batch_end(*args, **kwargs)

    class Model(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torchvision.models.resnet18(num_classes=100)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self(batch[0]), batch[1])  # nothing logged: no progress-bar metrics

        def validation_step(self, batch, batch_idx):
            self(batch[0])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)

    class CountStart(pl.Callback):
        """Placed after the recorder: starts counting once every epoch-start hook has run."""

        def __init__(self, counter: dict) -> None:
            self.counter = counter

        def _start(self, phase: str):
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("warn")
            self.counter["ctx"] = warnings.catch_warnings(record=True)
            self.counter["log"] = self.counter["ctx"].__enter__()
            self.counter["phase"] = phase
            warnings.simplefilter("always")

        def on_train_epoch_start(self, trainer, pl_module):
            self._start("train")

        def on_validation_epoch_start(self, trainer, pl_module):
            if not trainer.sanity_checking:
                self._start("val")

    class CountStop(pl.Callback):
        """Placed before the recorder: stops counting before any epoch-end hook runs."""

        def __init__(self, counter: dict) -> None:
            self.counter = counter

        def _stop(self):
            torch.cuda.set_sync_debug_mode("default")
            log = self.counter.pop("log", None)
            if log is None:
                return
            n = sum("synchroniz" in str(w.message) for w in log)
            self.counter["ctx"].__exit__(None, None, None)
            phase = self.counter.pop("phase")
            self.counter[phase] = self.counter.get(phase, 0) + n

        def on_validation_epoch_start(self, trainer, pl_module):
            self._stop()  # the training batch loop ends where the epoch-end validation starts

        def on_train_epoch_end(self, trainer, pl_module):
            self._stop()

        def on_validation_epoch_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                self._stop()

    torch.manual_seed(0)
    n = 4096
    data = TensorDataset(torch.randn(n, 3, 32, 32), torch.randint(0, 100, (n,)))
    train = DataLoader(WithIndex(data), batch_size=256, shuffle=True, pin_memory=True)
    val = DataLoader(data, batch_size=512, pin_memory=True)  # ids from the sampler

    def run(with_recorder: bool) -> dict:
        counter: dict = {}
        callbacks = [CountStop(counter)]
        with tempfile.TemporaryDirectory() as tmp:
            if with_recorder:
                callbacks.append(StrictRecorder(tmp, run_name="cuda", record_train=True,
                                                wandb=WandbOptions(media=False)))
            callbacks.append(CountStart(counter))
            trainer = pl.Trainer(accelerator="gpu", devices=1, precision="32-true", max_epochs=1, logger=False,
                                 enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                                 num_sanity_val_steps=-1, callbacks=callbacks)
            t0 = time.time()
            trainer.fit(Model(), train, val)
            counter["seconds"] = time.time() - t0
            if with_recorder:
                from lightning_ddd import DecisionStore

                s = DecisionStore(callbacks[1].store_path)
                counter["rows"] = {sp: s.info(sp).num_rows for sp in s.splits}
                counter["evaluated"] = int(s.read("val", "evaluated")[-1].sum())
        return counter

    # positive controls: the counting and the error mode do see a synchronisation
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        torch.ones(1, device="cuda").item()
        torch.cuda.set_sync_debug_mode("default")
    control_count = sum("synchroniz" in str(w.message) for w in log)
    try:
        with sync_errors():
            torch.ones(1, device="cuda").item()
        control_error = False
    except RuntimeError:
        control_error = True
    if control_count < 1 or not control_error:
        print(f"FAIL: the controls did not see a synchronisation (warn count {control_count}, error {control_error})")
        return 1
    with_rec = run(True)  # raises on any synchronisation inside the recorder's per-batch code
    without = run(False)
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print(f"0. controls: a .item() counts {control_count} synchronisation(s) in warn mode and raises in error mode")
    print(f"1. error mode inside the recorder's per-batch hooks: no synchronisation raised "
          f"(rows written: {with_rec['rows']}, validation samples in the last row: {with_rec['evaluated']} of {n})")
    print(f"2. synchronisations counted in warn mode over one epoch's batch loops: train {with_rec.get('train')} "
          f"with the recorder vs {without.get('train')} without; validation {with_rec.get('val')} vs "
          f"{without.get('val')}")
    ok = with_rec.get("train") == without.get("train") and with_rec.get("val") == without.get("val")
    print("RESULT:", "PASS" if ok else "FAIL", f"({with_rec['seconds']:.0f} s + {without['seconds']:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
