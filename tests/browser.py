"""A real browser for tests: Debian's ``chromium`` driven by Playwright (no browser download is possible).

Tests that need it are skipped when chromium or Playwright is missing, unless ``LIGHTNING_DDD_REQUIRE_BROWSER=1``
(set by ``.ci/run``), where a missing browser fails them instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """The chromium executable: ``$LIGHTNING_DDD_CHROMIUM`` or the first on PATH."""
    env = os.environ.get("LIGHTNING_DDD_CHROMIUM")
    if env:
        return env
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def need_browser() -> str:
    """Skip (or fail under ``LIGHTNING_DDD_REQUIRE_BROWSER=1``) without chromium and Playwright."""
    path = chromium_path()
    try:
        import playwright.sync_api  # noqa: F401
    except ModuleNotFoundError:
        path = None
    if path is None:
        why = "needs Debian's chromium (apt-get install -y chromium) and Playwright (pip install playwright)"
        if os.environ.get("LIGHTNING_DDD_REQUIRE_BROWSER") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return path


class PageWatch:
    """A page with its console errors, page errors and every requested URL recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

    def network(self) -> list[str]:
        """Requests that left the machine (anything but file: and data: URLs)."""
        return [u for u in self.requests if not u.startswith(("file:", "data:", "blob:"))]


@contextmanager
def browser_page(viewport: tuple[int, int] = (1200, 900)) -> Iterator[PageWatch]:
    """A fresh chromium page (headless, no sandbox: tests run as root)."""
    from playwright.sync_api import sync_playwright

    path = need_browser()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            ctx = b.new_context(viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True)
            yield PageWatch(ctx.new_page())
        finally:
            b.close()


def non_blank(png: bytes) -> bool:
    """Whether a screenshot shows something: not one flat colour."""
    import io

    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(png), format="png")
    return bool(img[..., :3].std() > 0.02)
