"""Packaging: the floors in pyproject.toml are exactly what the CI floor leg installs; docstring examples run."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# torch: the local build, its floor tested by compat_matrix; playwright: the browser tests run in the main leg only
NOT_PINNED = {"torch", "torchvision", "mypy", "ruff", "playwright"}


def _requirements() -> dict[str, str]:
    """name -> floor of every requirement in pyproject.toml (dependencies and extras)."""
    text = (ROOT / "pyproject.toml").read_text()
    text = text[text.index("[project]"): text.index("[project.scripts]")]  # not the build requirements
    out = {}
    for name, floor in re.findall(r'"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?>=([0-9][^",;]*)"', text):
        out[name.lower()] = floor
    return out


def _floors() -> dict[str, str]:
    out = {}
    for line in (ROOT / ".ci" / "floors.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_floors_in_pyproject_are_what_ci_installs():
    req, floors = _requirements(), _floors()
    assert {"lightning", "pytorch-lightning", "torch", "numpy", "h5py", "matplotlib"} <= set(req)
    for name, floor in req.items():
        if name in NOT_PINNED:
            continue
        assert name in floors, f"{name} has floor {floor} in pyproject.toml but is not pinned in .ci/floors.txt"
        assert floors[name] == floor, f"{name}: pyproject floor {floor}, CI installs {floors[name]}"
    assert set(floors) <= set(req), f"pinned but not required: {set(floors) - set(req)}"


def test_python_floor_and_no_upper_pins():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.10"' in text
    deps = re.findall(r'^\s*"([^"]+)",?$', text, flags=re.M)
    assert not [d for d in deps if "<" in d], "upper pins need a known break"


@pytest.mark.parametrize("module", ["lightning_ddd.analysis.kappa", "lightning_ddd.analysis.difficulty"])
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_the_lightning_package_is_the_users_own(monkeypatch):
    import importlib.util

    import lightning_ddd

    real = importlib.util.find_spec
    for present, want in (({"pytorch_lightning"}, "lightning_ddd.pytorch_lightning"), (set(), None)):
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, _p=present: (
            (object() if name in _p else None) if name in ("lightning", "pytorch_lightning") else real(name, *a)))
        if want is None:
            with pytest.raises(ImportError, match="neither `lightning` nor `pytorch_lightning`.*lightning-ddd\\["):
                lightning_ddd._recorder_module("DecisionRecorder")
        else:
            assert lightning_ddd._recorder_module("DecisionRecorder") == want
    text = (ROOT / "pyproject.toml").read_text()
    deps = text[text.index("dependencies = ["): text.index("[project.optional-dependencies]")]
    assert "lightning" not in deps.replace("# Lightning", "")  # neither package forced on the user


@pytest.mark.parametrize("torch_v,numpy_v,ok", [("2.1.0", "2.2.6", False), ("2.2.2+cu121", "2.0.0", False),
                                                 ("2.1.0", "1.26.4", True), ("2.3.0", "2.2.6", True)])
def test_an_old_torch_beside_numpy_2_is_refused_in_one_line(torch_v, numpy_v, ok):
    from lightning_ddd.environment import check_torch_numpy

    if ok:
        check_torch_numpy(torch_v, numpy_v)
    else:
        with pytest.raises(ImportError, match="built against NumPy 1.*numpy<2"):
            check_torch_numpy(torch_v, numpy_v)
