"""Exceptions raised by the store. Every message says what was wrong and how to fix it."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for problems with a decision store file."""


class StoreFormatError(StoreError):
    """The file is not a decision store, is damaged, or has a newer format version."""


class StoreMismatchError(StoreError):
    """A row does not fit the store: another dataset (sample count, ids or targets) or a step going back."""


class StoreLockedError(StoreError):
    """Another recorder already writes this store."""
