"""Which module's output is the classifier's, batch by batch: the named submodule, the LightningModule, or the
head found by itself in the first batch where neither the LightningModule is called nor logits are returned.

:class:`ClassifierCapture` composes one :class:`~lightning_ddd.capture.forward.ForwardCapture` (the watched
module's first output per batch) and, until the choice is settled, one
:class:`~lightning_ddd.capture.forward.HeadFinder` (every submodule, for one batch). The hooks keep the
forward-call count; the overridable ``extract_batch`` only reads it. torch only: the messages go out through
the callables the recorder passes in (Lightning's ``rank_zero_info`` / ``rank_zero_warn``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from lightning_ddd.capture.extract import (
    BatchRecord,
    batch_size_of,
    find_ids,
    find_targets,
    logits_from_forward,
    logits_from_output,
)
from lightning_ddd.capture.forward import ForwardCapture, HeadFinder
from lightning_ddd.capture.thumbnails import find_images


class ClassifierCapture:
    """The classifier's output during each batch, and the one-time messages about it.

    Args:
        module: the submodule named by the user (``DecisionRecorder(module=...)``), or None.
        info: prints an information line once (rank 0).
        warn: prints a warning once (rank 0).
    """

    def __init__(self, module: str | None, info: Callable[[str], Any], warn: Callable[[str], Any]) -> None:
        self.module = module
        self.head: str | None = None  # the submodule found by itself when the LightningModule is never called
        self._info, self._warn = info, warn
        self._forward = ForwardCapture()
        self._finder: HeadFinder | None = None
        self._settled = False
        self._warned_calls = False

    def attach(self, pl_module: torch.nn.Module) -> None:
        """Register the forward hook on the LightningModule, or on the named (or already found) submodule.

        Raises:
            ValueError: the named submodule does not exist.
        """
        target = pl_module
        if self.module or self.head:
            try:
                target = pl_module.get_submodule(self.module or self.head or "")
            except AttributeError as err:
                raise ValueError(
                    f"DecisionRecorder(module={self.module!r}): the LightningModule has no such submodule ({err})."
                ) from err
        self._forward.attach(target)

    def detach(self) -> None:
        """Remove the forward hook."""
        self._forward.detach()

    def stop(self) -> None:
        """Stop capturing (after an exception in a step)."""
        self._forward.active = False

    def begin(self, pl_module: torch.nn.Module, active: bool) -> None:
        """Start a batch's capture; while the classifier is not known yet, watch every submodule too."""
        self._forward.begin(active)
        if active and self.module is None and not self._settled and self._finder is None:
            self._finder = HeadFinder(pl_module)

    def end(self, pl_module: torch.nn.Module, batch: Any, outputs: Any) -> Any:
        """End a batch's capture and return the watched module's first output (or None).

        The first time the LightningModule itself is not called and the step returns no logits, the classifier
        is chosen among the submodules (said once) and watched from then on.

        Raises:
            ValueError: two submodules return classifier-shaped outputs (both are named).
        """
        captured = self._forward.end()
        finder, self._finder = self._finder, None
        if finder is None:
            return captured
        finder.close()
        size = batch_size_of(batch)
        if captured is not None or logits_from_output(outputs, size) is not None:
            self._settled = True  # the README's default: self(x) is called, or the step returns logits
            return captured
        choice = finder.choose(size)
        if choice is None:
            return None
        self.head, output = choice
        self._settled = True
        self._forward.attach(pl_module.get_submodule(self.head))
        self._forward.calls = finder.count(self.head)
        self._info(
            f"DecisionRecorder: the LightningModule itself is not called in its steps; recording the outputs of "
            f"submodule {self.head!r} (the outermost call returning (batch, classes)). Pass "
            "DecisionRecorder(module='...') to record another submodule."
        )
        return output

    def watched(self) -> str:
        """The watched module, in words."""
        name = self.module or self.head
        return f"submodule {name!r}" if name else "the LightningModule"

    def warn_calls(self, captured: Any, outputs: Any) -> None:
        """Warn once when the watched module ran several times in one step (only the first call is recorded)."""
        calls = self._forward.calls - (1 if captured is not None and self._forward.last_was(outputs) else 0)
        if calls > 1 and not self._warned_calls:
            self._warned_calls = True
            self._warn(
                f"DecisionRecorder: {self.watched()} was called {calls} times in one validation step (test-time "
                "augmentation, an ensemble, a model calling itself?); the first call's output is recorded. To "
                "record the step's own decision, return its logits from validation_step (a (B, C) tensor or "
                "{'logits': ...})."
            )

    def default_record(self, batch: Any, outputs: Any, captured: Any, *, with_index: bool) -> BatchRecord:
        """The default extraction of a batch (see ``DecisionRecorder.extract_batch``): logits from the step's
        outputs, else from the captured forward output; targets, ids and images from the batch.

        Raises:
            ValueError: no logits or no targets found (what to do instead is said).
        """
        size = batch_size_of(batch)
        logits = logits_from_output(outputs, size)
        if logits is None:
            logits = logits_from_forward(captured, size)
            self.warn_calls(captured, outputs)
        if logits is None:
            where = self.watched() if self.module or self.head else "the LightningModule or any submodule"
            raise ValueError(
                f"DecisionRecorder found no logits for a validation batch: validation_step returned "
                f"{type(outputs).__name__} and no call of {where} returned a floating (batch, classes) tensor. "
                "Call the classifier in validation_step, name it with DecisionRecorder(module='...'), return the "
                "logits (or a dict with 'logits'), or override DecisionRecorder.extract_batch."
            )
        targets = find_targets(batch)
        if targets is None:
            raise ValueError(
                f"DecisionRecorder found no targets in a batch of type {type(batch).__name__}: expected (x, y, ...) "
                "or a dict with one of 'label', 'labels', 'target', 'targets', 'y'. Override "
                "DecisionRecorder.extract_batch for other layouts."
            )
        return BatchRecord(logits=logits, targets=targets, ids=find_ids(batch, with_index=with_index),
                           images=find_images(batch))
