"""Serving: detection, faces, tracking, drawing, ONNX prediction, video, batch runs, feedback, the live view's settings. Imports neither torch, fastai nor timm."""
