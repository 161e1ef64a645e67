"""The one definition of how a face becomes model input, shared by training and serving.

A face is a grey 48×48 image (FER-2013's native form). Item level: any image → grey, 48×48.
Batch level (fastai ``after_batch``): uint8 → float, augmentation in training only, bilinear
resize to the model's input size, normalisation with the backbone's pretrained statistics.
Inference runs the exported learner's own ``after_batch`` pipeline on a uint8 batch built by
:func:`fer.faces.faces_array`, so the two paths cannot drift apart; :func:`inference_module` turns that
pipeline into a torch module (read from the pipeline's own settings and checked against it) so it can
be compiled together with the model.
"""

from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F

from fer.quiet import known_warnings_silenced  # before fastai

with known_warnings_silenced():  # importing fastai makes torch warn that jit.script is deprecated
    from fastai.vision.all import (
        AffineCoordTfm,
        IntToFloatTensor,
        Normalize,
        Resize,
        ResizeMethod,
        TensorImageBW,
        aug_transforms,
    )

from fer.labels import FACE_SIZE

#: Grey normalisation when a backbone has no pretrained statistics (trained from scratch).
DEFAULT_STATS = (0.5, 0.5)


def grey_stats(pretrained_cfg: dict | None) -> tuple[float, float]:
    """Mean/std for one grey channel from a timm ``pretrained_cfg``.

    timm's ``in_chans=1`` folds the RGB stem by summing its weights, which equals feeding the grey
    image on all three channels; averaging the per-channel stats keeps that equivalence.
    """
    if not pretrained_cfg or "mean" not in pretrained_cfg:
        return DEFAULT_STATS
    return float(np.mean(pretrained_cfg["mean"])), float(np.mean(pretrained_cfg["std"]))


def item_tfms() -> list:
    """Per-image transforms: any labelled image (any size) → 48×48, like FER-2013's faces."""
    return [Resize(FACE_SIZE, method=ResizeMethod.Squish)]


def batch_tfms(size: int, stats: tuple[float, float], augment: bool = True) -> list:
    """Per-batch transforms: augmentation (training only), resize to ``size``, normalise."""
    if augment:
        spatial = aug_transforms(size=size, max_rotate=15.0, max_zoom=1.15, max_warp=0.15, max_lighting=0.3)
    else:
        spatial = [AffineCoordTfm(size=size)]
    return [*spatial, Normalize.from_stats([stats[0]], [stats[1]])]


class InferencePreprocess(torch.nn.Module):
    """The validation ``after_batch`` pipeline as one compilable module: uint8 ÷ ``div``, bilinear resize
    to ``size`` (fastai's identity affine resample), normalise."""

    def __init__(self, div: float, size: tuple[int, int], align_corners: bool, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.div, self.size, self.align_corners = float(div), tuple(size), bool(align_corners)
        self.register_buffer("mean", mean.detach().clone().float().reshape(1, -1, 1, 1))
        self.register_buffer("std", std.detach().clone().float().reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / self.div
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=self.align_corners)
        return (x - self.mean) / self.std


def inference_module(pipeline, tolerance: float = 1e-4) -> InferencePreprocess | None:
    """``pipeline`` (a learner's validation ``after_batch``) as an :class:`InferencePreprocess`, or None when
    it holds a transform this does not know or the module's output differs from the pipeline's."""
    div, size, align_corners, mean, std = 255.0, None, True, None, None
    for tfm in pipeline.fs:
        if getattr(tfm, "split_idx", None) == 0:  # training-time augmentation
            continue
        if isinstance(tfm, IntToFloatTensor):
            div = tfm.div
        elif isinstance(tfm, AffineCoordTfm) and tfm.mode == "bilinear" and tfm.cp_size:
            size, align_corners = tfm.cp_size, tfm.align_corners
        elif isinstance(tfm, Normalize):
            mean, std = tfm.mean, tfm.std
        else:
            return None
    if size is None or mean is None:
        return None
    module = InferencePreprocess(div, size, align_corners, mean, std).eval()
    faces = torch.randint(0, 256, (4, 1, FACE_SIZE, FACE_SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = pipeline(TensorImageBW(faces)).as_subclass(torch.Tensor), module(faces)
        if got.shape != expected.shape or float((got - expected).abs().max()) > tolerance:
            return None
    return module
