"""``from fer.classes import Video``, as the fer package (PyPI) spells it: :class:`fer.compat.Video`."""

from fer.compat import Video

__all__ = ["Video"]
