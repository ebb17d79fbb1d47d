"""One background thread for the recorder's epoch-end output (store writes, W&B media), in order.

The training thread only hands over host arrays; writing a row (HDF5, compression) and building media
(histograms, thumbnails) happen here, so the next epoch starts at once. ``flush`` waits for every queued
job and re-raises the first error: the recorder calls it before a checkpoint is saved (so a checkpoint never
counts a row that is not in the store), at the end of fit, on exceptions, and before reading the store back.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class BackgroundJobs:
    """A FIFO of jobs run by one daemon thread, created on first use (never pickled)."""

    def __init__(self) -> None:
        self._fresh()

    def _fresh(self) -> None:
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:
        return {}

    def __setstate__(self, state: dict[str, object]) -> None:
        self._fresh()

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:  # after a failure, later jobs (later rows) must not run
                    job()
            except BaseException as err:  # noqa: BLE001 - handed to the training thread by flush()
                self._error = err
            finally:
                self._queue.task_done()

    def submit(self, job: Callable[[], Any]) -> None:
        """Queue a job; raises the error of an earlier job first, if any."""
        self.raise_error()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._queue = queue.Queue()
                self._thread = threading.Thread(target=self._run, name="lightning-ddd-writer", daemon=True)
                self._thread.start()
        assert self._queue is not None
        self._queue.put(job)

    def keep_error(self, err: BaseException) -> None:
        """Keep an error to raise at the next :meth:`submit` or :meth:`flush`."""
        self._error = err

    def raise_error(self) -> None:
        """Re-raise (once) the error of a failed job."""
        err, self._error = self._error, None
        if err is not None:
            raise err

    def flush(self) -> None:
        """Wait until every queued job ran; re-raise the first error."""
        if self._queue is not None and self._thread is not None and self._thread.is_alive():
            self._queue.join()
        self.raise_error()

    def close(self) -> None:
        """Finish the queued jobs and stop the thread (errors are re-raised)."""
        try:
            self.flush()
        finally:
            if self._queue is not None and self._thread is not None and self._thread.is_alive():
                self._queue.put(None)
                self._thread.join()
            self._thread = None
