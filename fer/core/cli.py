"""What every command-line tool shares: log output, the known dependency warnings silenced, progress bars
(the serving commands' model and batch options are in :mod:`fer.serving.cli`).

Library modules log through :mod:`logging` (``logging.getLogger(__name__)``) and never print; the tools
call :func:`configure_logging` so those messages reach the user.
"""

from __future__ import annotations

import logging
import sys

from fer.core.quiet import silence_known_warnings


def configure_logging(verbose: bool = False) -> None:
    """Send ``fer`` log messages to stdout as plain lines (debug ones too with ``verbose``) and silence the
    dependency warnings users cannot act on (:mod:`fer.core.quiet`). The module run as ``python -m fer.NAME`` logs
    as ``__main__``, not ``fer.NAME``: its messages are sent the same way."""
    silence_known_warnings()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("fer", "__main__"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
        logger.propagate = False


def progress(iterable, total: int | None = None, desc: str = "", unit: str = "it", disable: bool = False):
    """A progress bar on stderr (tqdm); with ``iterable=None``, one to advance by hand (``bar.update()``)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)


def plural(n: int, noun: str) -> str:
    """``1 face``, ``3 faces``."""
    return f"{n} {noun}{'s' * (n != 1)}"
