"""The package's HTML templates (report page, study pages), rendered by Jinja with autoescaping on."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("lightning_ddd.report", "templates"),
                              autoescape=True, undefined=jinja2.ChainableUndefined, keep_trailing_newline=True)


def render(name: str, context: dict[str, Any], *, filters: dict[str, Callable[..., Any]] | None = None) -> str:
    """Render template ``name`` with ``context``; ``filters`` are added to the environment first."""
    env = _environment()
    env.filters.update(filters or {})
    return str(env.get_template(name).render(**context))
