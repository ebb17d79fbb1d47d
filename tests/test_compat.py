"""Lightning's internals are touched in one module only (issue 13.4)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_ddd"
COMPAT = PACKAGE / "lightning_compat.py"
LOOP_NAMES = {"fit_loop", "epoch_loop", "val_loop", "validate_loop", "batch_progress", "batch_idx", "launcher"}


def _own_private_names() -> set[str]:
    """Every ``_name`` the package defines itself (functions, classes, attributes, assignments)."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return {n for n in names if n.startswith("_")}


def _violations(path: Path, own: set[str]) -> list[str]:
    out = []
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
            if name.startswith("_") and not name.startswith("__") and name not in own:
                out.append(f"{path.name}:{node.lineno} .{name}")
            if name in LOOP_NAMES:
                out.append(f"{path.name}:{node.lineno} .{name} (a Lightning loop internal)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"_[A-Z]\w+", node.value) or node.value in LOOP_NAMES or (
                    node.value.startswith("_") and not node.value.startswith("__")
                    and node.value not in own and re.fullmatch(r"_\w+", node.value)):
                out.append(f"{path.name}:{node.lineno} string {node.value!r}")
    return out


def test_no_module_but_the_compat_module_touches_lightning_internals():
    own = _own_private_names()
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != COMPAT:
            bad += _violations(path, own)
    assert not bad, "Lightning internals outside lightning_ddd/lightning_compat.py:\n" + "\n".join(bad)


def test_the_scan_catches_a_private_lightning_name(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f(trainer, loop):\n    return loop._combined_loader, trainer.fit_loop.epoch_loop\n")
    found = _violations(probe, _own_private_names())
    assert any("_combined_loader" in v for v in found) and any("fit_loop" in v for v in found)


def test_no_direct_torch_distributed_collectives():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "torch.distributed" not in text and "dist.all_gather" not in text, path


def test_missing_internals_are_one_clear_error_at_setup(tmp_path):
    import lightning.pytorch as pl

    from lightning_ddd import DecisionRecorder
    from lightning_ddd.demo.models import DigitsClassifier
    from lightning_ddd.lightning_compat import LightningInternalsError

    t = pl.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False, default_root_dir=tmp_path)
    del t.fit_loop.epoch_loop.val_loop._combined_loader  # what a Lightning release without it would look like
    rec = DecisionRecorder(tmp_path)
    with pytest.raises(LightningInternalsError, match=r"lightning \d+\.\d+.*not supported"):
        rec.setup(t, DigitsClassifier(), "fit")
