"""``WithIndex``: a dataset wrapper that adds each sample's index to what the dataset yields."""

from __future__ import annotations

from typing import Any


class WithIndex:
    """Wrap a map-style dataset so that each item carries its index as the sample id.

    Tuples and lists gain the index as their last element (``(x, y)`` becomes ``(x, y, index)``); dicts gain
    an ``"index"`` key; any other item becomes ``(item, index)``. The recorder reads the id from the third
    tuple element or the ``"index"`` key. Attribute access falls through to the wrapped dataset, so
    ``WithIndex(ds).classes`` still works.

    Args:
        dataset: any object with ``__getitem__`` and ``__len__``.

    Example::

        val_loader = DataLoader(WithIndex(val_set), batch_size=256, shuffle=True)
    """

    def __init__(self, dataset: Any) -> None:
        if _is_iterable_dataset(dataset):
            raise TypeError(
                f"WithIndex needs a map-style dataset (indexable, with a length), got the IterableDataset "
                f"{type(dataset).__name__}, whose samples have no index. Yield the id with each sample instead "
                "(a dict key 'index', or a third tuple element) or override DecisionRecorder.extract_batch."
            )
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(
                f"WithIndex needs a map-style dataset with __getitem__ and __len__, got {type(dataset).__name__}."
            )
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        item = self.dataset[index]
        if isinstance(item, dict):
            return {**item, "index": index}
        if isinstance(item, (tuple, list)):
            return (*item, index)
        return (item, index)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _is_iterable_dataset(dataset: Any) -> bool:
    """Whether ``dataset`` is a torch ``IterableDataset`` (checked by class name: no torch import here)."""
    return any(c.__name__ == "IterableDataset" and c.__module__.startswith("torch.") for c in type(dataset).__mro__)
