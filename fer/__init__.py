"""fer: facial expression recognition with fastai + timm, OpenCV face detection and a Gradio app.

    import fer
    m = fer.load()
    m.analyze("photo.jpg")   # -> list[fer.Face]
    m.video("clip.mp4")      # -> pandas DataFrame

    from fer import FER, Video   # the fer package's (PyPI ``fer``) API on this model: fer.compat
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fer.core.labels import FER2013_CLASSES, FERPLUS_CLASSES

if TYPE_CHECKING:  # the heavy parts (torch, fastai, OpenCV) load on first use, not on `import fer`
    from fer.api import Face, Model
    from fer.compat import FER, Video

__all__ = ["FER", "FER2013_CLASSES", "FERPLUS_CLASSES", "Face", "Model", "Video", "load"]
__version__ = "0.1.0"


def load(model=None, detector: str = "yunet", min_face: int = 0, score: float | None = None,
         min_confidence: float = 0.0, min_quality: float = 0.0) -> Model:
    """The expression model (default: the shipped one) with a face detector: ``m.analyze(photo)`` → faces,
    ``m.video(path)`` → a DataFrame; faces under ``min_confidence`` or ``min_quality`` are reported as not sure
    (off by default). See :func:`fer.api.load`."""
    from fer.api import load as load_model

    return load_model(model, detector, min_face, score, min_confidence, min_quality)


def __getattr__(name: str):
    if name in ("Face", "Model"):
        import fer.api

        return getattr(fer.api, name)
    if name in ("FER", "Video"):
        import fer.compat

        return getattr(fer.compat, name)
    raise AttributeError(f"module 'fer' has no attribute {name!r}")
