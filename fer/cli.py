"""What every command-line tool sets up before it works: log output and the known dependency warnings.

Library modules log through :mod:`logging` (``logging.getLogger(__name__)``) and never print; the tools
call :func:`configure_logging` so those messages reach the user.
"""

from __future__ import annotations

import logging
import sys

from fer.quiet import silence_known_warnings


def configure_logging(verbose: bool = False) -> None:
    """Send ``fer`` log messages to stdout as plain lines (debug ones too with ``verbose``) and silence the
    dependency warnings users cannot act on (:mod:`fer.quiet`)."""
    silence_known_warnings()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("fer")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
