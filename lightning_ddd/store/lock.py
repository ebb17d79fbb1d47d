"""A lock file that keeps two recorders from writing one store."""

from __future__ import annotations

import json
import os
import socket
import warnings
from pathlib import Path

from lightning_ddd.store.errors import StoreLockedError

_HELD: dict[str, int] = {}  # lock path -> token of the holder in this process


def lock_path(store: str | os.PathLike) -> Path:
    """Return the lock file of a store."""
    store = Path(store)
    return store.with_name(store.name + ".lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StoreLock:
    """An exclusive claim on a store file, held by one recorder.

    The claim is a file ``<store>.lock`` created atomically, holding host, pid and run id. A claim left by a
    dead process on the same host, or by an earlier attempt of the same run being resumed, is taken over.

    Args:
        store: the store file.
        run_id: id of the run that claims it.
        token: identifies the claiming object within this process.
    """

    def __init__(self, store: str | os.PathLike, run_id: str, token: int) -> None:
        self.path = lock_path(store)
        self.store = Path(store)
        self.run_id = run_id
        self.token = token

    def acquire(self, *, resuming: bool = False) -> None:
        """Take the claim.

        Args:
            resuming: the run resumes from a checkpoint; a claim with the same run id is taken over.

        Raises:
            StoreLockedError: another live recorder holds the store.
        """
        key = str(self.path.resolve())
        holder = _HELD.get(key)
        if holder is not None and holder != self.token:
            raise StoreLockedError(
                f"Two DecisionRecorders write {str(self.store)!r}. Give each a different dirpath or run_name."
            )
        payload = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "run_id": self.run_id})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale(resuming):
                    self.path.unlink(missing_ok=True)
                    continue
                raise
            with os.fdopen(fd, "w") as fh:
                fh.write(payload)
            _HELD[key] = self.token
            return
        raise StoreLockedError(f"Could not claim {str(self.store)!r}.")

    def _stale(self, resuming: bool) -> bool:
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return True
        same_host = info.get("host") == socket.gethostname()
        pid = int(info.get("pid", -1))
        if same_host and pid == os.getpid():
            return _HELD.get(str(self.path.resolve())) in (None, self.token)
        if same_host and not _pid_alive(pid):
            return True
        if resuming and info.get("run_id") == self.run_id:
            return True
        raise StoreLockedError(
            f"Another process (host {info.get('host')}, pid {pid}) is recording into {str(self.store)!r}. "
            "Runs started concurrently need different run names or directories. If that process is gone, "
            f"delete {str(self.path)!r}."
        )

    def release(self) -> None:
        """Give the claim up (no error if it is already gone)."""
        key = str(self.path.resolve())
        if _HELD.get(key) == self.token:
            _HELD.pop(key, None)
            try:
                self.path.unlink(missing_ok=True)
            except OSError as err:  # a read-only directory: never mask the real error of the run
                warnings.warn(f"Could not remove the claim file {str(self.path)!r} ({err}); the next run of the "
                              "same name takes it over once this process has ended.", stacklevel=2)


def live_claim(store: str | os.PathLike) -> str | None:
    """Describe the live process on this host that claims ``store`` (``"pid 123 on host"``), or None.

    A claim from another host cannot be checked and counts as live.
    """
    path = lock_path(store)
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return None
    pid = int(info.get("pid", -1))
    host = info.get("host")
    if host == socket.gethostname() and (pid == os.getpid() or not _pid_alive(pid)):
        return None
    return f"pid {pid} on {host}"
