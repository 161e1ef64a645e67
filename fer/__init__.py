"""fer: facial expression recognition with fastai + timm, OpenCV face detection and a Gradio app."""

from fer.labels import FER2013_CLASSES, FERPLUS_CLASSES

__all__ = ["FER2013_CLASSES", "FERPLUS_CLASSES"]
__version__ = "0.1.0"
