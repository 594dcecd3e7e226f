"""A bad bag or a bad argument: one clear sentence, exit status 2, never a traceback."""

from __future__ import annotations

import sys

EXIT_BAD_BAG = 2


class BagError(Exception):
    """The bag (or an argument about it) is unusable; the message names the problem."""


def report(command: str, error: BaseException) -> int:
    """Print `error` for `command` on stderr; the exit status."""
    print(f"sentryfuse {command}: error: {error}", file=sys.stderr)
    return EXIT_BAD_BAG


def warn(command: str, message: str) -> None:
    print(f"sentryfuse {command}: warning: {message}", file=sys.stderr)
