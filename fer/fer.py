"""``from fer.fer import FER``, as the fer package (PyPI) spells it: :class:`fer.compat.FER`."""

from fer.compat import FER

__all__ = ["FER"]
