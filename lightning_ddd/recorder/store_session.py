"""Resolving the store a run writes (a collective step) and the recorder's checkpoint state."""

from __future__ import annotations

import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from lightning_ddd.analysis.dynamics import DynamicsAccumulator
from lightning_ddd.analysis.loading import default_burn_in
from lightning_ddd.recorder.naming import default_run_name, run_metadata, safe_name
from lightning_ddd.store.format import RowFlag
from lightning_ddd.store.lock import StoreLock
from lightning_ddd.store.writer import StoreWriter


class StoreSession:
    """Mixin of ``DecisionRecorderCore``: which store, its claim, resume, and the checkpoint state."""

    def _rank_zero_call(self, trainer: Any, fn: Any) -> Any:
        """Run ``fn`` on global rank 0, broadcast its result or exception, raise it on every rank."""
        result: Any = None
        error: BaseException | None = None
        if trainer.is_global_zero:
            try:
                result = fn()
            except BaseException as err:  # noqa: BLE001 - re-raised on every rank below
                error = err
        result, error = trainer.strategy.broadcast((result, error), src=0)
        if error is not None:
            raise error
        return result

    def _resolve_store(self, trainer: Any, pl_module: Any) -> None:
        if self._writer is not None:
            if self._lock is not None:
                self._rank_zero_call(trainer, lambda: self._lock.acquire(resuming=True))
            return
        name = self._restored.get("run_name") or (safe_name(self.run_name) if self.run_name else None)
        name = name or default_run_name(trainer)
        run_id = self._restored.get("run_id") or uuid.uuid4().hex
        name, run_id = trainer.strategy.broadcast((name, run_id), src=0)
        path = self.dirpath / f"{name}.h5"
        old = self._restored.get("store_path")
        if old and Path(old).resolve() != path.resolve():
            self._pl.utilities.rank_zero_warn(
                f"DecisionRecorder: the checkpoint recorded into {old!r}; continuing in {str(path)!r} (dirpath moved)."
            )
        writer = StoreWriter(path, run_name=name, run_id=run_id, metadata=run_metadata(trainer, pl_module),
                             float_dtype=self.precision, locking=self.locking)
        lock = StoreLock(path, run_id, id(self))

        def open_on_rank_zero() -> dict[str, int]:
            lock.acquire(resuming=bool(self._restored))
            try:
                if path.exists() and not self._restored:
                    if not self.overwrite:
                        raise FileExistsError(
                            f"A decision store already exists at {str(path)!r}. Resume with "
                            "trainer.fit(..., ckpt_path=...), choose another DecisionRecorder(run_name=...) or "
                            "dirpath, or pass overwrite=True to replace it."
                        )
                    path.unlink()
                    for stale in writer.pending_files():
                        stale.unlink()
                created = not path.exists()
                counts = writer.open()
                self._created_store = created
                return self._drop_stale_rows(writer, counts)
            except BaseException:
                lock.release()
                raise

        counts = self._rank_zero_call(trainer, open_on_rank_zero)
        self._writer, self._lock, self._store_path = writer, lock, path
        self._resolved_run_name, self._run_id = name, run_id
        self._rows = dict(counts)
        if self._restored:
            self._rebuild_live(trainer)

    def _drop_stale_rows(self, writer: StoreWriter, counts: dict[str, int]) -> dict[str, int]:
        if not self._restored:
            return counts
        kept = dict(self._restored.get("rows", {}))
        for split, n in counts.items():
            keep = kept.get(split, 0)
            if n > keep:
                dropped = writer.truncate(split, keep)
                warnings.warn(
                    f"DecisionRecorder: dropped {dropped} row(s) of split {split!r} written after the checkpoint "
                    f"that is being resumed ({str(writer.path)!r} now holds {keep} rows).", stacklevel=2,
                )
                counts[split] = keep
        return counts

    def _rebuild_live(self, trainer: Any) -> None:
        from lightning_ddd.store.reader import DecisionStore

        def read() -> tuple[dict[str, DynamicsAccumulator], dict[str, list[float]]]:
            store = DecisionStore(self._store_path)
            live, epochs = {}, {}
            for split in store.splits:
                rows = store.rows(split)
                epochs[split] = rows["epoch"].tolist()
                fields = ("evaluated", "correct", "pred")
                info = store.info(split)
                burn_in = default_burn_in(rows["flags"])
                if info.kind != "train" and self.burn_in is not None:
                    burn_in = self.burn_in
                acc = DynamicsAccumulator(info.num_samples, burn_in=burn_in, flip_threshold=self.flip_threshold)
                for row in store.iter_rows(split, fields):
                    acc.update(row["correct"], row["evaluated"], pred=row["pred"])
                live[split] = acc
            return live, epochs

        self._live, self._epochs = self._rank_zero_call(trainer, read)
        self._last_step = {s: int(v) for s, v in self._restored.get("last_step", {}).items()}

    def state_dict(self) -> dict[str, Any]:
        """Small, flat resume state: run name and id, store path, committed rows per split.

        Queued writes are finished first, so the checkpoint never counts a row that is not in the store.
        """
        try:
            self._jobs.flush()
        except Exception as err:  # noqa: BLE001 - raised again (on every rank) at the next row
            self._jobs._error = err
        rows = dict(self._rows)
        if self._writer is not None:  # rows held in memory (a full or read-only disk) are not durable yet
            for split, n in self._writer.held_rows.items():
                rows[split] = rows.get(split, 0) - n
        return {
            "run_name": self._resolved_run_name, "run_id": self._run_id,
            "store_path": str(self._store_path) if self._store_path else None,
            "rows": rows, "last_step": dict(self._last_step), "version": 1,
            "step_offset": self._step_offset, "epoch_offset": self._epoch_offset,
        }

    def _finish_writes(self, timeout: float) -> None:
        """At the end of a run: retry held rows and side files for up to ``timeout`` seconds, then say what
        is left, once (rank 0 only)."""
        writer = self._writer
        if writer is None:
            return
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            try:
                done = writer.retry() and writer.replay_pending(quiet=True)
            except Exception as err:  # noqa: BLE001 - never fail the end of training over the store
                warnings.warn(f"DecisionRecorder: finishing the writes to {str(writer.path)!r} failed: {err}",
                              stacklevel=2)
                return
            if done or time.monotonic() >= deadline:
                break
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 2.0)
        pending, held = len(writer.pending_files()), sum(writer.held_rows.values())
        if pending or held:
            parts = []
            if pending:
                parts.append(f"{pending} row(s) wait in {str(writer.path)!r}.pending/: run `lightning-ddd repair "
                             f"{writer.path}` once the store is free")
            if held:
                steps = writer.held_steps
                parts.append(f"{held} row(s) (global steps {steps}) could not be saved anywhere ({writer.problem}) "
                             "and are lost when this process ends; free disk space and call trainer.fit again "
                             "with ckpt_path='last' to record again from the last checkpoint")
            warnings.warn("DecisionRecorder: " + "; ".join(parts) + ".", stacklevel=2)


    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Remember the checkpoint's run; only a ``fit`` that resumes from it continues (and trims) the store.

        Lightning restores callback state for every entry point; ``validate``, ``test`` and ``predict`` with a
        ``ckpt_path`` must never change what ``fit`` recorded, so the state is applied at ``on_fit_start``.
        """
        self._checkpoint_state = dict(state_dict) if state_dict.get("run_id") else None

    def _apply_checkpoint_state(self, state_dict: dict[str, Any]) -> None:
        self._restored = {
            "run_name": state_dict.get("run_name"), "run_id": state_dict.get("run_id"),
            "store_path": state_dict.get("store_path"), "rows": dict(state_dict.get("rows", {})),
            "last_step": dict(state_dict.get("last_step", {})),
        }
        self._writer = None
        self._step_offset, self._epoch_offset = int(state_dict.get("step_offset", 0)), float(
            state_dict.get("epoch_offset", 0.0))

    def _continue_after_earlier_rows(self, trainer: Any) -> None:
        """A second ``fit`` of this recorder (a new Trainer, a second stage) appends after the earlier rows:
        its steps and epochs are shifted past the last recorded ones when they would not come after them."""
        if self._restored or not self._last_step:
            return
        last_step = max(self._last_step.values())
        if int(trainer.global_step) + self._step_offset < last_step:  # a new Trainer starts again at step 0
            self._step_offset = last_step + 1 - int(trainer.global_step)
            self._epoch_offset = max((e[-1] for e in self._epochs.values() if e), default=0.0) - float(
                trainer.current_epoch)
            self._pl.utilities.rank_zero_info(
                f"DecisionRecorder: a new fit of this recorder continues {str(self._store_path)!r} after its last "
                f"row: steps +{self._step_offset}, epochs +{self._epoch_offset:g}.")

    def _discard_empty_store(self) -> None:
        """After a failure before any trained row was written, remove the store this run created: it holds at
        most the untrained network's row, which the rerun records again, and it would block the rerun."""
        writer = self._writer
        if not self._created_store or writer is None or writer.pending_files() or sum(writer.held_rows.values()):
            return
        try:
            from lightning_ddd.store.reader import DecisionStore

            store = DecisionStore(writer.path)
            trained = any(not int(f) & RowFlag.BEFORE_TRAINING for s in store.splits for f in store.rows(s)["flags"])
            if not trained:
                writer.path.unlink(missing_ok=True)
                self._writer, self._created_store, self._rows = None, False, {}
                self._live, self._epochs, self._last_step = {}, {}, {}
        except Exception:  # noqa: BLE001 - cleanup must never mask the run's own error
            pass


