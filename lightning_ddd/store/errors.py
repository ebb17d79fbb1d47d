"""Exceptions raised by the store. Every message says what was wrong and how to fix it."""

from __future__ import annotations

import os
import stat


class StoreError(Exception):
    """Base class for problems with a decision store file."""


class StoreFormatError(StoreError):
    """The file is not a decision store, is damaged, or has a newer format version."""


class StoreMismatchError(StoreError):
    """A row does not fit the store: another dataset (sample count, ids or targets) or a step going back."""


class StoreLockedError(StoreError):
    """Another recorder already writes this store."""


class StorePermissionError(StoreError, PermissionError):
    """The user may not read (or write) the store file or its folder."""


def permission_denied(path: object, what: str = "read") -> StorePermissionError:
    """The one-line error for a store (or folder) the user may not ``what`` (read, write)."""
    try:
        st = os.stat(str(path))
        mode = f" (mode {stat.filemode(st.st_mode)}, owner uid {st.st_uid})"
    except OSError:
        mode = ""
    return StorePermissionError(f"Permission denied: you may not {what} {str(path)!r}{mode}. Ask its owner for "
                                f"{what} access (chmod), or copy the file somewhere you can {what} it.")
