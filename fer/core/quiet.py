"""Warnings from our dependencies that users cannot act on, and the one place that silences them.

- torch warns that ``torch.jit.script`` is deprecated each time fastai is imported (fastai scripts a few
  activation functions at import time);
- fastai's ``load_learner`` warns that pickles can run code. The README says so once, and loaders here
  only open the shipped model or a path the user names.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

#: (category, start of the message) of each warning silenced.
KNOWN_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    (FutureWarning, r"`torch\.jit\.script` is deprecated"),
    (UserWarning, r"load_learner` uses Python's insecure pickle"),
)


def silence_known_warnings() -> None:
    """Hide :data:`KNOWN_WARNINGS` for the rest of the process (command-line tools call this first)."""
    for category, message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


@contextlib.contextmanager
def known_warnings_silenced() -> Iterator[None]:
    """Hide :data:`KNOWN_WARNINGS` inside the block only (library code)."""
    with warnings.catch_warnings():
        silence_known_warnings()
        yield
