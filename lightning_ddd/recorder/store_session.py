"""The store session: which store a run writes, its claim, the background writer, row counts and resume state.

One :class:`StoreSession` per recorder. It is the only part that touches the store file during training:
resolving it (a collective step: rank 0 opens, every rank learns the outcome), queueing rows for the
background writer on rank 0, the checkpoint state (rows per split, offsets), and the end of a run (bounded
retries of rows that could not be written yet, releasing the claim, removing a store a failed first epoch
left empty).
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lightning_ddd.analysis.dynamics import DynamicsAccumulator
from lightning_ddd.analysis.loading import default_burn_in
from lightning_ddd.recorder.background import BackgroundJobs
from lightning_ddd.recorder.naming import default_run_name, run_metadata, safe_name
from lightning_ddd.store.format import RowFlag
from lightning_ddd.store.lock import StoreLock
from lightning_ddd.store.pending import SideFileError, row_from_bytes, row_to_bytes, side_file_split
from lightning_ddd.store.row import Row
from lightning_ddd.store.writer import StoreWriter

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule, Trainer

T = TypeVar("T")

CHECKPOINT_ROWS_MAX_BYTES = 64 << 20
"""At most this many bytes of rows held in memory (neither in the store nor in a side file) are carried in the
recorder's checkpoint state; a packed row of 50,000 samples of 1,000 classes with every field takes 0.55 MB."""


def rank_zero_call(trainer: Trainer, fn: Callable[[], T]) -> T:
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


class StoreSession:
    """A recorder's store: resolving it, writing rows in the background, counting them, resuming.

    Args:
        dirpath: folder of the store.
        run_name: the store's file name (default: from the logger).
        precision: ``"float32"`` or ``"float16"`` for loss and margin.
        locking: HDF5 locking of the writer.
        overwrite: replace an existing store instead of refusing.
        burn_in: the recorder's live burn-in (None: the analysis' rule), to rebuild live summaries on resume.
        flip_threshold: forgetting events that make a sample flip-flopping.
    """

    def __init__(self, dirpath: Path, run_name: str | None, *, precision: str, locking: bool | str,
                 overwrite: bool, burn_in: int | None, flip_threshold: int,
                 extra_metadata: dict[str, Any] | None = None) -> None:
        self.dirpath = dirpath
        self.run_name = run_name
        self.precision = precision
        self.locking = locking
        self.overwrite = overwrite
        self.burn_in = burn_in
        self.flip_threshold = flip_threshold
        self.extra_metadata = dict(extra_metadata or {})
        self.writer: StoreWriter | None = None
        self.lock: StoreLock | None = None
        self.path: Path | None = None
        self.resolved_name: str | None = None
        self.run_id: str | None = None
        self.restored: dict[str, Any] = {}
        self.checkpoint_state: dict[str, Any] | None = None
        self.step_offset = 0
        self.epoch_offset = 0.0
        self.created = False
        self.rows: dict[str, int] = {}
        self.last_step: dict[str, int] = {}
        self.jobs = BackgroundJobs()
        self.carried_steps: set[tuple[str, int]] = set()
        self.created_dirs: list[Path] = []
        self.carry_bound_warned = False

    # ------------------------------------------------------------------ resolving
    def resolve(self, trainer: Trainer, pl_module: LightningModule, token: int,
                warn: Callable[[str], None] = lambda msg: warnings.warn(msg, stacklevel=3)) -> None:
        """Open (or create) the store on rank 0 and share the outcome with every rank (a collective).

        Args:
            trainer: the Trainer.
            pl_module: the LightningModule (for the run's metadata).
            token: identifies the recorder that claims the store within this process.
            warn: how to warn (the recorder passes Lightning's ``rank_zero_warn``).
        """
        if self.writer is not None:
            if self.lock is not None:
                rank_zero_call(trainer, self._reclaim)
            return
        name = self.restored.get("run_name") or (safe_name(self.run_name) if self.run_name else None)
        name = name or default_run_name(trainer)
        run_id = self.restored.get("run_id") or uuid.uuid4().hex
        name, run_id = trainer.strategy.broadcast((name, run_id), src=0)
        path = self.dirpath / f"{name}.h5"
        old = self.restored.get("store_path")
        if old and Path(old).resolve() != path.resolve():
            warn(f"DecisionRecorder: the checkpoint recorded into {old!r}; continuing in {str(path)!r} "
                 "(dirpath moved).")
        metadata = {**run_metadata(trainer, pl_module), **self.extra_metadata}
        writer = StoreWriter(path, run_name=name, run_id=run_id, metadata=metadata, float_dtype=self.precision,
                             locking=self.locking)
        lock = StoreLock(path, run_id, token)

        def open_on_rank_zero() -> dict[str, int]:
            folder = path.parent.absolute()
            self.created_dirs = [d for d in (folder, *folder.parents) if not d.exists()]
            lock.acquire(resuming=bool(self.restored))
            try:
                if path.exists() and not self.restored:
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
                counts = writer.open()  # replays side files first
                self.created = created
                carried = self._carried() if self.restored else []
                counts = self._drop_stale_rows(writer, counts, carried)
                return self._write_carried_rows(writer, counts, carried, warn)
            except BaseException:
                lock.release()
                raise

        counts = rank_zero_call(trainer, open_on_rank_zero)
        self.writer, self.lock, self.path = writer, lock, path
        self.resolved_name, self.run_id = name, run_id
        self.rows = dict(counts)

    def _reclaim(self) -> None:
        """A later ``fit`` of this recorder: claim the store again and append side files first."""
        assert self.lock is not None and self.writer is not None
        self.lock.acquire(resuming=True)
        self.writer.replay_pending()

    def _carried(self) -> list[Row]:
        """The rows a resumed checkpoint carried (rows that were only in memory when it was saved)."""
        rows = []
        for data in self.restored.get("carried", []):
            try:
                rows.append(row_from_bytes(data)[0])
            except SideFileError as err:
                warnings.warn(f"DecisionRecorder: a row carried in the checkpoint cannot be read ({err}); it is "
                              "recorded again only if training repeats that epoch.", stacklevel=2)
        return rows

    def _drop_stale_rows(self, writer: StoreWriter, counts: dict[str, int], carried: list[Row]) -> dict[str, int]:
        """On resume, keep the rows the checkpoint counted (in the store, in side files, or carried by it) and
        drop the rest: those recorded after it, which the resumed run records again.
        """
        if not self.restored:
            return counts
        kept = dict(self.restored.get("rows", {}))
        for row in carried:
            kept[row.split] = kept.get(row.split, 0) - 1  # written after the truncation, below
        waiting: dict[str, list] = {}
        for path in writer.waiting_files():  # side files the store could not take yet: rows after the store's
            waiting.setdefault(side_file_split(path), []).append(path)
        for split in sorted(set(counts) | set(waiting)):
            keep, n, files = kept.get(split, 0), counts.get(split, 0), waiting.get(split, [])
            dropped = writer.truncate(split, keep) if n > keep else 0
            stale = files[max(0, keep - n):]
            for path in stale:
                path.unlink(missing_ok=True)
            if dropped or stale:
                warnings.warn(
                    f"DecisionRecorder: dropped {dropped + len(stale)} row(s) of split {split!r} written after the "
                    f"checkpoint that is being resumed ({str(writer.path)!r} now holds {min(n, keep)} rows"
                    + (f" and {len(files) - len(stale)} in side files" if files else "") + ").", stacklevel=2,
                )
            if split in counts:
                counts[split] = min(n, keep)
        return counts

    def _write_carried_rows(self, writer: StoreWriter, counts: dict[str, int], rows: list[Row],
                            warn: Callable[[str], None]) -> dict[str, int]:
        """Write the rows the checkpoint carried, in order, before any new row."""
        if not rows:
            return counts
        writer.hold(rows)
        writer.retry()
        for row in rows:
            counts[row.split] = counts.get(row.split, 0) + 1
        left = sum(writer.held_rows.values())
        warn(f"DecisionRecorder: {len(rows)} row(s) that were only in memory when the checkpoint was saved were "
             f"carried by it; {len(rows) - left} are now in {str(writer.path)!r} or its side files"
             + (f", {left} still wait in memory" if left else "") + ".")
        return counts

    def rebuild_live(self, trainer: Trainer) -> tuple[dict[str, DynamicsAccumulator], dict[str, list[float]]]:
        """The live accumulators and epochs of a resumed store, read on rank 0 and broadcast."""
        from lightning_ddd.store.reader import DecisionStore

        path = self.path

        def read() -> tuple[dict[str, DynamicsAccumulator], dict[str, list[float]]]:
            store = DecisionStore(path)  # type: ignore[arg-type]
            live, epochs = {}, {}
            for split in store.splits:
                rows = store.rows(split)
                epochs[split] = rows["epoch"].tolist()
                info = store.info(split)
                burn_in = default_burn_in(rows["flags"])
                if info.kind != "train" and self.burn_in is not None:
                    burn_in = self.burn_in
                acc = DynamicsAccumulator(info.num_samples, burn_in=burn_in, flip_threshold=self.flip_threshold)
                for row in store.iter_rows(split, ("evaluated", "correct", "pred")):
                    acc.update(row["correct"], row["evaluated"], pred=row["pred"])
                live[split] = acc
            return live, epochs

        self.last_step = {s: int(v) for s, v in self.restored.get("last_step", {}).items()}
        return rank_zero_call(trainer, read)

    # ------------------------------------------------------------------ rows
    def write(self, trainer: Trainer, row: Row) -> None:
        """Queue the row for the background writer on rank 0 (an earlier write's error is raised on every rank)."""
        writer = self.writer
        assert writer is not None, "store not resolved"
        rank_zero_call(trainer, lambda: self.jobs.submit(lambda: writer.append(row)))
        self.rows[row.split] = self.rows.get(row.split, 0) + 1
        self.last_step[row.split] = row.global_step

    def has_rows(self) -> bool:
        """Whether any row was recorded (or found in the store at resume)."""
        return any(self.rows.values())

    def row_key(self, global_step: int, epoch: float) -> tuple[int, float]:
        """The stored (global step, epoch) of a row: shifted after an earlier fit of the same recorder."""
        return int(global_step) + self.step_offset, float(epoch) + self.epoch_offset

    def continue_after_earlier_rows(self, trainer: Trainer, last_epoch: float) -> str | None:
        """A second ``fit`` of this recorder (a new Trainer, a second stage) appends after the earlier rows:
        its steps and epochs are shifted past the last recorded ones when they would not come after them.

        Returns:
            A message for the user when the rows are shifted, else None.
        """
        if self.restored or not self.last_step:
            return None
        last_step = max(self.last_step.values())
        if int(trainer.global_step) + self.step_offset < last_step:  # a new Trainer starts again at step 0
            self.step_offset = last_step + 1 - int(trainer.global_step)
            self.epoch_offset = last_epoch - float(trainer.current_epoch)
            return (f"DecisionRecorder: a new fit of this recorder continues {str(self.path)!r} after its last row: "
                    f"steps +{self.step_offset}, epochs +{self.epoch_offset:g}.")
        return None

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Small, flat resume state: run name and id, store path, rows per split, offsets, and the rows that
        are only in memory (a full or read-only disk), packed as bytes, up to :data:`CHECKPOINT_ROWS_MAX_BYTES`.

        Queued writes are finished first. The checkpoint counts exactly the rows that are in the store, in a
        side file, or carried by it, so a resume from it writes the carried rows and loses none.
        """
        try:
            self.jobs.flush()
        except Exception as err:  # noqa: BLE001 - raised again (on every rank) at the next row
            self.jobs.keep_error(err)
        rows = dict(self.rows)
        carried: list[bytes] = []
        if self.writer is not None:
            held = self.writer.held()
            size = 0
            for i, row in enumerate(held):
                data = row_to_bytes(row, self.run_id)
                if size + len(data) > CHECKPOINT_ROWS_MAX_BYTES:
                    for late in held[i:]:  # in order: once one row does not fit, no later row is counted
                        rows[late.split] = rows.get(late.split, 0) - 1
                    self._warn_carry_bound(len(held) - i)
                    break
                size += len(data)
                carried.append(data)
                self.carried_steps.add((row.split, row.global_step))
        return {
            "run_name": self.resolved_name, "run_id": self.run_id,
            "store_path": str(self.path) if self.path else None,
            "rows": rows, "last_step": dict(self.last_step), "version": 1,
            "step_offset": self.step_offset, "epoch_offset": self.epoch_offset, "carried": carried,
        }

    def _warn_carry_bound(self, n: int) -> None:
        if not self.carry_bound_warned:
            self.carry_bound_warned = True
            warnings.warn(f"DecisionRecorder: {n} row(s) held in memory do not fit the checkpoint's bound of "
                          f"{CHECKPOINT_ROWS_MAX_BYTES >> 20} MiB for such rows; the checkpoint does not count them, "
                          "so they are lost if this process ends before the disk takes them.", stacklevel=3)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Remember the checkpoint's run; only a ``fit`` that resumes from it applies it (:meth:`apply_checkpoint`).

        Lightning restores callback state for every entry point; ``validate``, ``test`` and ``predict`` with a
        ``ckpt_path`` must never change what ``fit`` recorded.
        """
        self.checkpoint_state = dict(state_dict) if state_dict.get("run_id") else None

    def apply_checkpoint(self) -> bool:
        """At the start of ``fit``: continue the checkpoint's store (rows after it are dropped at resolve)."""
        state, self.checkpoint_state = self.checkpoint_state, None
        if state is None:
            return False
        self.restored = {
            "run_name": state.get("run_name"), "run_id": state.get("run_id"),
            "store_path": state.get("store_path"), "rows": dict(state.get("rows", {})),
            "last_step": dict(state.get("last_step", {})), "carried": list(state.get("carried", [])),
        }
        self.writer = None
        self.step_offset = int(state.get("step_offset", 0))
        self.epoch_offset = float(state.get("epoch_offset", 0.0))
        return True

    # ------------------------------------------------------------------ the end of a run
    def flush(self) -> None:
        """Wait for queued rows (and media); raise the first background error."""
        self.jobs.flush()

    def finish(self, timeout: float) -> None:
        """Retry held rows and side files for up to ``timeout`` seconds, then say what is left, once."""
        writer = self.writer
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
            steps = [(row.split, row.global_step) for row in writer.held()]
            carried = [s for s in steps if s in self.carried_steps]
            if carried:
                parts.append(f"{len(carried)} row(s) (global steps {[s for _, s in carried]}) could not be saved on "
                             f"this disk ({writer.problem}) and are carried by the last checkpoint: free disk space "
                             "and call trainer.fit(..., ckpt_path=<that checkpoint>) to write them")
            if len(carried) < held:
                lost = [s for sp, s in steps if (sp, s) not in self.carried_steps]
                parts.append(f"{len(lost)} row(s) (global steps {lost}) could not be saved anywhere "
                             f"({writer.problem}) and no checkpoint carries them: they are lost when this process "
                             "ends; free disk space and call trainer.fit again with ckpt_path='last' to record "
                             "again from the last checkpoint")
            warnings.warn("DecisionRecorder: " + "; ".join(parts) + ".", stacklevel=2)

    def discard_if_untrained(self) -> bool:
        """After a failure before any trained row was written, remove the store this run created: it holds at
        most the untrained network's row, which the rerun records again, and would block the rerun.

        Returns:
            True if the store was removed.
        """
        writer = self.writer
        if not self.created or writer is None or writer.pending_files() or sum(writer.held_rows.values()):
            return False
        try:
            from lightning_ddd.store.reader import DecisionStore

            store = DecisionStore(writer.path)
            if any(not int(f) & RowFlag.BEFORE_TRAINING for s in store.splits for f in store.rows(s)["flags"]):
                return False
            writer.path.unlink(missing_ok=True)
        except Exception:  # noqa: BLE001 - cleanup must never mask the run's own error
            return False
        self.writer, self.created, self.rows, self.last_step = None, False, {}, {}
        return True

    def release(self) -> None:
        """Give up the store's claim (rank 0)."""
        if self.lock is not None:
            self.lock.release()

    def remove_created_folders(self) -> None:
        """Remove the folders this run created for its store, deepest first, when they are empty (after
        :meth:`discard_if_untrained`: nothing it created stays when nothing was recorded).
        """
        for folder in self.created_dirs:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break  # not empty (something else is in it) or not ours to remove
        self.created_dirs = []

    def close_jobs(self) -> None:
        """Finish the queued jobs and stop the background thread."""
        self.jobs.close()

    def close(self, global_zero: bool, timeout: float) -> None:
        """At the end of a stage: finish queued jobs; on rank 0, retry what is left for up to ``timeout`` seconds
        (:meth:`finish`) and give up the store's claim.
        """
        self.close_jobs()
        if global_zero:
            self.finish(timeout)
            self.release()

    def abandon(self, global_zero: bool) -> bool:
        """After an exception: finish queued writes (a failure is only warned about: the exception matters
        more); on rank 0, remove a store that holds nothing trained (and the folders this run created for it)
        and give up the claim.

        Returns:
            True if the store was removed.
        """
        try:
            self.flush()
        except Exception as err:  # noqa: BLE001 - the original exception matters more
            warnings.warn(f"DecisionRecorder: a queued write failed too: {err!r}", stacklevel=3)
        if not global_zero:
            return False
        discarded = self.discard_if_untrained()
        self.release()
        if discarded:
            self.remove_created_folders()
        return discarded
