"""The one definition of how a face becomes model input, shared by training and serving.

A face is a grey 48×48 image (FER-2013's native form). Item level: any image → grey, 48×48.
Batch level (fastai ``after_batch``): uint8 → float, augmentation in training only, bilinear
resize to the model's input size, normalisation with the backbone's pretrained statistics.
Inference runs the exported learner's own ``after_batch`` pipeline on a uint8 batch built by
:func:`fer.serving.faces.faces_array`, so the two paths cannot drift apart; :func:`inference_module` turns that
pipeline into a torch module (read from the pipeline's own settings and checked against it) so it can
be compiled together with the model.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from fer.core.quiet import known_warnings_silenced  # before fastai

with known_warnings_silenced():  # importing fastai makes torch warn that jit.script is deprecated
    from fastai.vision.all import (
        AffineCoordTfm,
        IntToFloatTensor,
        Normalize,
        RandTransform,
        Resize,
        ResizeMethod,
        TensorImage,
        TensorImageBW,
        aug_transforms,
    )
    from fastai.vision.augment import affine_mat
    from fasttransform import Pipeline

from fer.core.labels import FACE_SIZE
from fer.training.config import Augment

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


def learner_stats(learn) -> tuple[float, float] | None:
    """The grey mean/std a learner's batches are normalised with, or None when its pipeline has no Normalize."""
    for tfm in validation_pipeline(learn).fs:
        if isinstance(tfm, Normalize):
            return float(tfm.mean.flatten()[0]), float(tfm.std.flatten()[0])
    return None


def item_tfms() -> list:
    """Per-image transforms: any labelled image (any size) → 48×48, like FER-2013's faces."""
    return [Resize(FACE_SIZE, method=ResizeMethod.Squish)]


def translate_mat(x: torch.Tensor, max_shift: float = 0.1, p: float = 0.5) -> torch.Tensor:
    """Random per-image shifts of at most ``max_shift`` of the width/height (fastai affine-matrix convention)."""
    n = x.size(0)
    shift = x.new_empty(2, n).uniform_(-2 * max_shift, 2 * max_shift)  # grid coordinates span [-1, 1]
    shift *= (x.new_empty(n).uniform_() < p).float()
    one, zero = x.new_ones(n), x.new_zeros(n)
    return affine_mat(one, zero, shift[0], zero, one, shift[1])


def _per_image(x: torch.Tensor, p: float) -> torch.Tensor:
    """A (N, 1, 1, 1) boolean mask: which images of the batch get a change made with probability ``p``."""
    return (torch.rand(x.size(0), 1, 1, 1, device=x.device) < p)


class RandomGamma(RandTransform):
    """Gamma curve per image, ``x ** exp(u)``, u uniform in ±``max_log_gamma`` (on [0, 1] pixels)."""

    order = 45  # after fastai's brightness/contrast, before Normalize

    def __init__(self, max_log_gamma: float = 0.3, p: float = 0.75):
        super().__init__()
        self.max_log_gamma, self.p_image = max_log_gamma, p

    def encodes(self, x: TensorImage):
        """Apply a random gamma to a share of the batch's images."""
        g = torch.empty(x.size(0), 1, 1, 1, device=x.device).uniform_(-self.max_log_gamma, self.max_log_gamma)
        g = torch.where(_per_image(x, self.p_image), g, torch.zeros_like(g))
        return x.clamp(1e-6, 1) ** g.exp()


class RandomBlur(RandTransform):
    """Gaussian blur on a random share ``p`` of the images, sigma uniform in ``sigma`` (pixels of the 48-px face)."""

    order = 20  # on the 48-px face, before the resize to the model's input size

    def __init__(self, p: float = 0.2, sigma: tuple[float, float] = (0.4, 1.2)):
        super().__init__()
        self.p_image, self.sigma = p, sigma

    def encodes(self, x: TensorImage):
        """Blur a share of the batch's images with a random Gaussian."""
        n, c, h, w = x.shape
        radius = math.ceil(2 * self.sigma[1])
        offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
        sigma = torch.empty(n, 1, device=x.device, dtype=x.dtype).uniform_(*self.sigma)
        kernel = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
        kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n*c, k)
        flat = F.pad(x.reshape(1, n * c, h, w), (radius,) * 4, mode="reflect")
        flat = F.conv2d(flat, kernel[:, None, None, :], groups=n * c)
        flat = F.conv2d(flat, kernel[:, None, :, None], groups=n * c)
        return torch.where(_per_image(x, self.p_image), flat.reshape(n, c, h, w), x)


#: JPEG's luminance quantisation table (ITU-T T.81, Annex K).
JPEG_LUMA = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=torch.float32)


def dct_matrix(n: int = 8) -> torch.Tensor:
    """The orthonormal DCT-II matrix: ``D @ block @ D.T`` is a block's 2-D DCT."""
    k, i = torch.arange(n).float()[:, None], torch.arange(n).float()[None]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d


def jpeg_quantise(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """What JPEG's lossy step does to grey images ``x`` (N, 1, H, W) in [0, 1], H and W multiples of 8: the 8×8
    DCT coefficients rounded to the luminance table scaled for each image's ``quality`` (N,) in 1–100."""
    n, c, h, w = x.shape
    d = dct_matrix().to(x)
    scale = torch.where(quality < 50, 5000 / quality, 200 - 2 * quality)  # libjpeg's quality scaling
    q = ((JPEG_LUMA.to(x)[None] * scale[:, None, None] + 50) / 100).floor().clamp(min=1)  # (N, 8, 8)
    blocks = (x * 255 - 128).reshape(n, c, h // 8, 8, w // 8, 8).transpose(3, 4)  # (N, C, H/8, W/8, 8, 8)
    q = q[:, None, None, None]
    coeffs = d @ blocks @ d.T
    blocks = d.T @ (torch.round(coeffs / q) * q) @ d
    return ((blocks.transpose(3, 4).reshape(n, c, h, w) + 128) / 255).clamp(0, 1)


class RandomJpeg(RandTransform):
    """JPEG compression artefacts (:func:`jpeg_quantise`) on a random share ``p`` of the 48-px faces."""

    order = 21

    def __init__(self, p: float = 0.2, quality: tuple[float, float] = (15.0, 75.0)):
        super().__init__()
        self.p_image, self.quality = p, quality

    def encodes(self, x: TensorImage):
        """Give a share of the batch's images JPEG's 8×8 quantisation at a random quality."""
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            return x
        quality = torch.empty(x.size(0), device=x.device).uniform_(*self.quality)
        return torch.where(_per_image(x, self.p_image), jpeg_quantise(x, quality), x)


class RandomErase(RandTransform):
    """Per image with probability ``p``: one rectangle of ``area`` (a share of the image, aspect 1/3–3) filled
    with Gaussian noise (after Normalize, so noise of the data's own scale)."""

    order = 100

    def __init__(self, p: float = 0.25, area: tuple[float, float] = (0.02, 0.2)):
        super().__init__()
        self.p_image, self.area = p, area

    def encodes(self, x: TensorImage):
        """Erase a random rectangle of a share of the batch's images."""
        n, _, h, w = x.shape
        dev = x.device
        area = torch.empty(n, device=dev).uniform_(*self.area) * h * w
        aspect = torch.exp(torch.empty(n, device=dev).uniform_(-math.log(3), math.log(3)))
        eh = (area * aspect).sqrt().clamp(1, h)
        ew = (area / aspect).sqrt().clamp(1, w)
        top = torch.rand(n, device=dev) * (h - eh)
        left = torch.rand(n, device=dev) * (w - ew)
        rows = torch.arange(h, device=dev)[None, :, None]
        cols = torch.arange(w, device=dev)[None, None, :]
        box = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
               & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None]))[:, None]
        box &= _per_image(x, self.p_image)
        return torch.where(box, torch.randn_like(x), x)


def augment_tfms(size: int, aug: Augment) -> list:
    """The training-only transforms of ``aug``, with the resize to ``size`` folded into the one affine step."""
    extra = []
    if aug.translate:
        extra.append(AffineCoordTfm(aff_fs=partial(translate_mat, max_shift=aug.translate, p=aug.p_affine), size=size))
    if aug.gamma:
        extra.append(RandomGamma(aug.gamma))
    if aug.blur:
        extra.append(RandomBlur(aug.blur))
    if aug.jpeg:
        extra.append(RandomJpeg(aug.jpeg))
    if aug.erasing:
        extra.append(RandomErase(aug.erasing))
    return aug_transforms(size=size, do_flip=aug.flip, max_rotate=aug.rotate, min_zoom=aug.scale[0],
                          max_zoom=aug.scale[1], max_warp=aug.warp, max_lighting=aug.lighting,
                          p_affine=aug.p_affine, xtra_tfms=extra)


def batch_tfms(size: int, stats: tuple[float, float], augment: Augment | bool = True) -> list:
    """Per-batch transforms: augmentation (training only; ``True`` is :class:`Augment`'s defaults, ``False`` or
    None none), resize to ``size``, normalise."""
    if augment is True:
        augment = Augment()
    spatial = augment_tfms(size, augment) if augment else [AffineCoordTfm(size=size)]
    return [*spatial, Normalize.from_stats([stats[0]], [stats[1]])]


def validation_pipeline(learn) -> Pipeline:
    """A learner's batch preprocessing as at validation and inference: resize + normalise, no augmentation."""
    return Pipeline(learn.dls.valid.after_batch.fs, split_idx=1)


class InferencePreprocess(torch.nn.Module):
    """The validation ``after_batch`` pipeline as one compilable module: uint8 ÷ ``div``, bilinear resize
    to ``size`` (fastai's identity affine resample), normalise."""

    def __init__(self, div: float, size: tuple[int, int], align_corners: bool, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.div, self.size, self.align_corners = float(div), tuple(size), bool(align_corners)
        self.register_buffer("mean", mean.detach().clone().float().reshape(1, -1, 1, 1))
        self.register_buffer("std", std.detach().clone().float().reshape(1, -1, 1, 1))

    @property
    def stats(self) -> tuple[float, float]:
        """The grey ``(mean, std)`` it normalises with."""
        return float(self.mean.flatten()[0]), float(self.std.flatten()[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 faces to the model's input: scale, resize (bilinear), normalise."""
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
