"""The optional parts of the install (pyproject.toml's extras) and the one line that names the one to add.

The default install (``pip install -e .``) serves: the app, :func:`fer.load`, ``fer.analyze`` and ``fer.video``
on an ``.onnx`` model. Training, evaluation, ONNX export and ``.pkl`` learners need ``[train]``; the
public-domain photos of the benchmarks need ``[bench]``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

#: Import name → the extra that installs it.
EXTRA_OF = {name: "train" for name in ("torch", "torchvision", "fastai", "fasttransform", "fastprogress", "fastcore",
                                       "timm", "onnx", "accelerate", "sklearn")} | {"skimage": "bench"}
#: What each extra is for, in messages.
EXTRA_PURPOSE = {"train": "the training install", "bench": "the benchmark photos"}


def missing_extra(error: ModuleNotFoundError) -> tuple[str, str] | None:
    """(module, extra) when ``error`` is a missing optional dependency, e.g. ``("torch", "train")``; ``None``
    for any other missing module (a real bug: let it raise)."""
    name = (error.name or "").split(".")[0]
    return (name, EXTRA_OF[name]) if name in EXTRA_OF else None


def install_command(extra: str) -> str:
    """The command that adds an extra to this checkout's install."""
    return f'pip install -e ".[{extra}]"'


def exit_on_missing_extra(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a command's ``main`` so that a missing optional dependency ends it with one line naming the extra
    to install (exit status 2), not a traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except ModuleNotFoundError as e:
            if (missing := missing_extra(e)) is None:
                raise
            name, extra = missing
            print(f"error: {name} is not installed; it comes with {EXTRA_PURPOSE[extra]}: {install_command(extra)}",
                  file=sys.stderr)
            return 2

    return wrapper
