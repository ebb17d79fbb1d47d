"""Issue 22's figures, held in CI: no function over 60 lines, no module over 450 lines, and fewer than 30
``dict[str, Any]`` in the package (documents are TypedDicts; see ``report/summary_types.py`` and
``study/documents.py``). Complexity (ruff C90), docstrings (ruff D) and ``@override`` (mypy's
``explicit-override``) are enforced by the linters that ``.ci/run`` runs."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_ddd"
MODULES = sorted(PACKAGE.rglob("*.py"))


def test_no_module_over_450_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 450}
    assert MODULES and long == {}


def test_no_function_over_60_lines():
    long = []
    for p in MODULES:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > 60:
                    long.append(f"{p.relative_to(PACKAGE)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []


def test_fewer_than_30_untyped_dicts():
    found = {str(p.relative_to(PACKAGE)): c for p in MODULES if (c := p.read_text().count("dict[str, Any]"))}
    assert sum(found.values()) < 30, found
