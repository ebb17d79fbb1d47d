"""What every ``lightning-ddd`` command shares: the one-line user error and the progress printer."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 1."""


def progress_printer(quiet: bool) -> Callable[[str], None]:
    """A progress callback printing ``[lightning-ddd] ...`` lines on stderr (nothing when ``quiet``)."""

    def say(msg: str) -> None:
        if not quiet:
            print(f"[lightning-ddd] {msg}", file=sys.stderr, flush=True)

    return say
