"""The package's HTML templates (the report page here, the study's pages in ``lightning_ddd/study/templates``),
rendered by Jinja with autoescaping on: every value is escaped unless marked safe (:class:`markupsafe.Markup`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any


@cache
def _environment(package: str) -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader(package, "templates"), autoescape=True,
                              undefined=jinja2.ChainableUndefined, keep_trailing_newline=True)


def render(name: str, context: dict[str, object], *, filters: dict[str, Callable[..., Any]] | None = None,
           package: str = "lightning_ddd.report") -> str:
    """Render template ``name`` of ``package``'s ``templates/`` folder with ``context``.

    Args:
        name: the template's file name.
        context: its variables.
        filters: filters added to the environment first.
        package: the package whose ``templates/`` folder holds it.
    """
    env = _environment(package)
    env.filters.update(filters or {})
    return str(env.get_template(name).render(**context))
