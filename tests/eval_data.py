"""A ``MODULE:FACTORY`` dataset for ``lightning-ddd evaluate`` tests: sklearn's digits, validation split."""

import torch
from torch.utils.data import TensorDataset

from lightning_ddd.demo.digits import load_digits_arrays


def digits_val() -> TensorDataset:
    _, _, x, y = load_digits_arrays(0)
    return TensorDataset(torch.from_numpy(x), torch.from_numpy(y))


def broken() -> TensorDataset:
    raise RuntimeError("the data server is down")


def text_items() -> list:
    """Items no model can take (strings): the failure happens inside the Trainer, not while loading."""
    return [("not an image", 0)] * 8
