"""Forward hooks: the output of the watched module during a batch, and finding the classifier by itself.

:class:`ForwardCapture` keeps the first output of one module (the LightningModule, or a submodule) per batch
and counts the calls. :class:`HeadFinder` watches every submodule during one batch when the LightningModule
itself is never called (``self.model(x)``, ``self.forward(x)`` inside ``validation_step``) and picks the
classifier's output: the outermost call whose output is a floating ``(B, C)`` tensor (or ``(B,)`` /
``(B, 1)`` for binary heads) with B the batch's size, leaving out outputs that a later candidate consumed
(features fed into a head). Everything here reads only tensor metadata: no host-device synchronisation.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from lightning_ddd.capture.extract import logits_from_forward


class ForwardCapture:
    """A forward hook that keeps the first output of the watched module during a batch and counts its calls."""

    def __init__(self) -> None:
        self.active = False
        self.output: Any = None
        self.last: Any = None
        self.calls = 0
        self.handle: Any = None
        self.target: torch.nn.Module | None = None

    def __getstate__(self) -> dict[str, object]:
        return {"active": False, "output": None, "last": None, "calls": 0, "handle": None, "target": None}

    def attach(self, module: torch.nn.Module) -> None:
        """Register the hook on ``module`` (moving it there from another module)."""
        if self.target is module and self.handle is not None:
            return
        self.detach()
        self.handle = module.register_forward_hook(self._hook)
        self.target = module

    def detach(self) -> None:
        """Remove the hook."""
        if self.handle is not None:
            self.handle.remove()
            self.handle = None
        self.target = None

    def _hook(self, module: Any, args: Any, output: Any) -> None:
        # The innermost call completes first; under DDP the outer call wraps the step and is ignored.
        if self.active:
            self.calls += 1
            self.last = output
            if self.output is None:
                self.output = output

    def begin(self, active: bool) -> None:
        """Start a batch."""
        self.output = self.last = None
        self.calls = 0
        self.active = active

    def end(self) -> Any:
        """End a batch; return the first captured output."""
        self.active = False
        output, self.output = self.output, None
        return output

    def last_was(self, outputs: Any) -> bool:
        """Whether the last call returned the step's own output (DDP routes the step through the module's
        forward: that outer call is not a second forward pass).
        """
        return self.calls > 1 and self.last is outputs


@dataclasses.dataclass
class _Call:
    name: str
    output: Any
    logits: torch.Tensor | None
    inputs: set[int]
    order: int


def _storages(value: Any) -> set[int]:
    """Storage addresses of the tensors in ``value`` (metadata only, no synchronisation)."""
    if isinstance(value, torch.Tensor):
        try:
            return {value.untyped_storage().data_ptr()}
        except (RuntimeError, NotImplementedError):
            return set()
    if isinstance(value, (tuple, list)):
        return set().union(*(_storages(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(_storages(v) for v in value.values())) if value else set()
    return set()


def _head_shaped(logits: torch.Tensor | None, batch_size: int | None) -> bool:
    if logits is None or not torch.is_floating_point(logits) or batch_size is None:
        return False
    return logits.shape[:1] == (batch_size,) and logits.ndim in (1, 2)


class HeadFinder:
    """Watches every submodule of a LightningModule during one batch and names the classifier head.

    Args:
        root: the LightningModule.
    """

    def __init__(self, root: torch.nn.Module) -> None:
        self.calls: list[_Call] = []
        self.handles: list[Any] = []
        for name, module in root.named_modules():
            if name and not isinstance(module, torch.jit.ScriptModule):  # TorchScript takes no hooks
                self.handles.append(module.register_forward_hook(self._hook(name)))
        self.batch_size: int | None = None

    def _hook(self, name: str) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            self.calls.append(_Call(name, output, logits_from_forward(output, None), _storages(args),
                                    len(self.calls)))
        return hook

    def close(self) -> None:
        """Remove every hook."""
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def choose(self, batch_size: int | None) -> tuple[str, Any] | None:
        """The chosen submodule's name and its first output in this batch, or None when no call fits.

        Raises:
            ValueError: two or more outputs fit equally (two heads): both are named.
        """
        calls = [c for c in self.calls if _head_shaped(c.logits, batch_size)]
        first: dict[str, _Call] = {}
        for c in calls:
            first.setdefault(c.name, c)
        names = list(first)
        outer = [n for n in names if not any(n.startswith(o + ".") for o in names if o != n)]
        heads = [n for n in outer if not any(  # features that a later candidate consumed are not the head
            c.order > first[n].order and c.name != n and not c.name.startswith(n + ".")
            and _storages(first[n].logits) & c.inputs for c in calls)]
        if not heads:
            return None
        if len(heads) > 1:
            shapes = ", ".join(f"{n!r} {tuple(getattr(first[n].logits, 'shape', ()))}" for n in heads)
            raise ValueError(
                f"DecisionRecorder: more than one submodule returns classifier-shaped outputs in a validation step "
                f"({shapes}) and the LightningModule itself is not called; name the one to record with "
                "DecisionRecorder(module='...'), or return its logits from validation_step."
            )
        return heads[0], first[heads[0]].output

    def count(self, name: str) -> int:
        """How often the named submodule was called in the watched batch."""
        return sum(c.name == name for c in self.calls)
