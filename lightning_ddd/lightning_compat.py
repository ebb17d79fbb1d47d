"""The one module that touches Lightning's internals (loops, progress counters, private names).

Lightning's public API does not say which dataloaders the running validation loop iterates, whether the
current training batch is the epoch's last, or how a wrapped distributed sampler stores its inner sampler.
The recorder needs these; every access goes through this module, guarded, so a Lightning release that
changes them gives one clear error at ``setup`` (naming the Lightning version and what to do) instead of a
wrong row. ``tests/test_compat.py`` checks that no other module uses a private Lightning name, and
``benchmarks/compat_matrix.py`` runs the core tests on several Lightning releases.

Nothing here imports Lightning: the functions take the objects Lightning hands to callbacks.
"""

from __future__ import annotations

from typing import Any


class LightningInternalsError(RuntimeError):
    """A Lightning internal the recorder needs is missing in this Lightning release."""


def _version(trainer: Any) -> str:
    module = type(trainer).__module__.split(".")[0]
    try:
        from importlib.metadata import version

        return f"{module} {version('lightning' if module == 'lightning' else 'pytorch-lightning')}"
    except Exception:  # noqa: BLE001 - only for the message
        return module


def _missing(trainer: Any, what: str) -> LightningInternalsError:
    return LightningInternalsError(
        f"DecisionRecorder cannot find {what} in {_version(trainer)}; this Lightning release is not supported. "
        "Install a tested release (lightning >= 2.1; see the README's compatibility table) or report the "
        "version at the project's issue tracker."
    )


def check_trainer(trainer: Any) -> None:
    """Check, at ``setup``, that every internal the recorder uses exists.

    Raises:
        LightningInternalsError: naming the Lightning version and the missing piece.
    """
    fit_loop = getattr(trainer, "fit_loop", None)
    epoch_loop = getattr(fit_loop, "epoch_loop", None)
    if epoch_loop is None:
        raise _missing(trainer, "trainer.fit_loop.epoch_loop")
    progress = getattr(epoch_loop, "batch_progress", None)
    if progress is None or not hasattr(progress, "is_last_batch"):
        raise _missing(trainer, "fit_loop.epoch_loop.batch_progress.is_last_batch")
    if not hasattr(epoch_loop, "batch_idx"):
        raise _missing(trainer, "fit_loop.epoch_loop.batch_idx")
    for loop in (getattr(epoch_loop, "val_loop", None), getattr(trainer, "validate_loop", None)):
        if loop is None or not hasattr(loop, "_combined_loader"):
            raise _missing(trainer, "the validation loop's combined loader")


def validation_loaders(trainer: Any, validating: bool) -> Any:
    """The dataloaders of the running validation loop (a list, dict or single loader), or None.

    Args:
        trainer: the Trainer.
        validating: the entry point is ``trainer.validate`` (else the validation inside ``fit``).
    """
    loop = trainer.validate_loop if validating else trainer.fit_loop.epoch_loop.val_loop
    try:
        combined = loop._combined_loader
    except AttributeError:
        raise _missing(trainer, "the validation loop's combined loader") from None
    return combined.iterables if combined is not None else trainer.val_dataloaders


def _data_loops(trainer: Any) -> list[Any]:
    return [trainer.fit_loop, trainer.fit_loop.epoch_loop.val_loop, trainer.validate_loop]


def on_loaders_ready(trainer: Any, callback: Any) -> None:
    """Call ``callback(loader, training)`` for every dataloader of the fit and validation loops each time a loop has set
    its dataloaders up (Lightning's sampler injection done) and before it iterates them.

    No callback hook runs between the two (``on_*_epoch_start`` comes after the loop created its iterator,
    which with workers has already drawn indices), so each loop's ``setup_data`` is wrapped; undone by
    :func:`remove_loader_hooks`.
    """
    try:
        loops = _data_loops(trainer)
    except AttributeError:
        raise _missing(trainer, "the fit and validation loops") from None
    for loop in loops:
        if not hasattr(loop, "setup_data") or not hasattr(loop, "_combined_loader"):
            raise _missing(trainer, f"{type(loop).__name__}.setup_data")
        if "setup_data" in vars(loop):
            continue  # already wrapped

        def setup_data(*args: Any, _loop: Any = loop, _original: Any = loop.setup_data, **kwargs: Any) -> Any:
            result = _original(*args, **kwargs)
            combined = getattr(_loop, "_combined_loader", None)
            for loader in getattr(combined, "flattened", None) or []:
                callback(loader, _loop is trainer.fit_loop)
            return result

        loop.setup_data = setup_data


def remove_loader_hooks(trainer: Any) -> None:
    """Undo :func:`on_loaders_ready`."""
    try:
        loops = _data_loops(trainer)
    except AttributeError:
        return
    for loop in loops:
        vars(loop).pop("setup_data", None)


def training_position(trainer: Any) -> tuple[bool, int]:
    """``(is_last_batch, batch_idx)`` of the running training epoch."""
    try:
        epoch_loop = trainer.fit_loop.epoch_loop
        return bool(epoch_loop.batch_progress.is_last_batch), int(epoch_loop.batch_idx)
    except AttributeError:
        raise _missing(trainer, "fit_loop.epoch_loop.batch_progress") from None


def wrapped_sampler(sampler: Any) -> Any:
    """The inner sampler of Lightning's ``DistributedSamplerWrapper`` (it keeps it in ``dataset._sampler``),
    or None for any other sampler.
    """
    return getattr(getattr(sampler, "dataset", None), "_sampler", None)


def is_spawned_ddp_child(trainer: Any) -> bool:
    """Whether this process is a child started by Lightning's multiprocessing launcher (``ddp_spawn``,
    ``ddp_fork``); such a child ends with ``os._exit`` and skips W&B's exit hooks.
    """
    import multiprocessing

    launcher = getattr(trainer.strategy, "launcher", None)
    return type(launcher).__name__ == "_MultiProcessingLauncher" and multiprocessing.parent_process() is not None


def all_gather(trainer: Any) -> Any:
    """A collective ``all_gather(tensor) -> (world, *shape)`` through the Trainer's strategy, or None for a
    single process.
    """
    if trainer.world_size <= 1:
        return None
    return trainer.strategy.all_gather
