"""Safe outputs: no command deletes or overwrites what it did not create, and nothing is half-written.

Rules, shared by ``report``, ``export`` and ``demo``:

* an output path that is, contains, or lies inside one of the command's inputs is always refused;
* an existing output that the same command did not make is refused unless the user passes ``--force``;
  folders a command makes carry a marker file (:data:`MARKER`) naming the command, files are recognised by
  their content (:func:`made_by_export`);
* a previous output of the same command is replaced atomically: the new one is written aside, then renamed
  over the old one, so a failure (a full disk, a bad input) leaves the old output untouched and no partial
  file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

MARKER = ".lightning-ddd"
"""File written into every folder a command makes: ``{"made_by": "<command>"}``."""


class OutputError(Exception):
    """An output path that would destroy something: printed as one line, exit code 1."""


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.realpath(path)))


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_not_input(out: str | os.PathLike, inputs: Iterable[str | os.PathLike], option: str = "--out") -> None:
    """Refuse an output that is, contains, or lies inside an input (whatever ``--force`` says).

    Raises:
        OutputError: naming the input.
    """
    target = _resolved(out)
    for item in inputs:
        src = _resolved(item)
        if _inside(target, src) or _inside(src, target):
            raise OutputError(
                f"{option} {str(out)!r} overlaps the input {str(item)!r} (it is, holds or lies inside it); "
                f"choose an output path outside the inputs."
            )


def folder_made_by(folder: str | os.PathLike) -> str | None:
    """The command that made ``folder`` (from its marker), or None."""
    marker = Path(folder) / MARKER
    try:
        return str(json.loads(marker.read_text()).get("made_by"))
    except (OSError, ValueError, AttributeError):
        return None


def mark_folder(folder: str | os.PathLike, command: str) -> None:
    """Write the marker that says ``command`` made ``folder``."""
    (Path(folder) / MARKER).write_text(json.dumps({"made_by": command}))


def check_folder_output(out: str | os.PathLike, command: str, *, force: bool) -> None:
    """Refuse an existing folder (or file) at ``out`` that ``command`` did not make, unless ``force``.

    Raises:
        OutputError: naming the path and ``--force``.
    """
    path = Path(out)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink() and (folder_made_by(path) == command or not any(path.iterdir())):
        return
    if not force:
        what = "a folder" if path.is_dir() else "a file"
        raise OutputError(
            f"{str(out)!r} already exists and is {what} that `lightning-ddd {command}` did not make; choose "
            f"another --out, or pass --force to replace it."
        )
    if not path.is_dir() or path.is_symlink():
        raise OutputError(f"{str(out)!r} exists and is not a folder; choose another --out.")


def made_by_export(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a table written by ``lightning-ddd export`` (CSV header or Parquet metadata)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            if head == b"PAR1":
                import pyarrow.parquet as pq

                meta = pq.read_schema(path).metadata or {}
                return b"lightning-ddd" in meta
            fh.seek(0)
            first = fh.readline(4096)
    except (OSError, ImportError, ValueError):
        return False
    return first.startswith(b"id,target,category,")


def check_file_output(out: str | os.PathLike, *, force: bool, recognise: bool) -> None:
    """Refuse an existing file at ``out`` that is not a previous output of the command, unless ``force``.

    Args:
        out: the output file.
        force: the user passed ``--force``.
        recognise: whether the existing file is a previous output of the same command.

    Raises:
        OutputError: naming the path and ``--force``.
    """
    path = Path(out)
    if path.is_dir():
        raise OutputError(f"--out {str(out)!r} is a folder; give a file name.")
    if path.exists() and not recognise and not force:
        raise OutputError(
            f"{str(out)!r} already exists and was not written by `lightning-ddd export`; choose another --out, or "
            "pass --force to replace it."
        )


@contextlib.contextmanager
def atomic_file(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``out``; on success rename it over ``out``, on failure remove it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(out: str | os.PathLike, command: str) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``, marked as made by ``command``; on success it replaces ``out``
    (the old folder is moved aside first and removed only after the rename), on failure it is removed.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        mark_folder(tmp, command)
        yield tmp
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
