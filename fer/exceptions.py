"""The exceptions of the fer package's API (PyPI ``fer``), for code written against it: ``from fer.exceptions
import InvalidImage`` works unchanged with :mod:`fer.compat`. Importing this module loads nothing else."""

from __future__ import annotations

__all__ = ["FaceDetectionError", "InvalidImage", "InvalidModelFile"]


class InvalidImage(ValueError):
    """An image given to :class:`fer.FER` cannot be used (None, not an array, path or data URI, unreadable,
    no such file, an array that is not an image); the message says what is wrong. A ``ValueError``, as
    :class:`fer.core.images.ImageError` is, so ``except ValueError`` catches both."""


class InvalidModelFile(RuntimeError):
    """The expression model given to :class:`fer.FER` (``model=``) cannot be loaded; the message names the file."""


class FaceDetectionError(RuntimeError):
    """Defined for code that catches it; fer-realtime's detectors do not raise it (a frame with no face gives an
    empty list)."""
