"""The decision store: an append-only HDF5 file per run (knows nothing of Lightning or torch)."""

from lightning_ddd.store.errors import StoreError, StoreFormatError, StoreLockedError, StoreMismatchError
from lightning_ddd.store.format import FORMAT_VERSION, RowFlag
from lightning_ddd.store.pending import MergeResult, merge_pending
from lightning_ddd.store.reader import DecisionStore, SplitInfo, open_store
from lightning_ddd.store.row import Row
from lightning_ddd.store.validate import check_split_name, check_store
from lightning_ddd.store.writer import StoreWriter

__all__ = [
    "FORMAT_VERSION", "DecisionStore", "MergeResult", "Row", "RowFlag", "SplitInfo", "StoreError", "StoreFormatError",
    "StoreLockedError", "StoreMismatchError", "StoreWriter", "check_split_name", "check_store", "merge_pending",
    "open_store",
]
