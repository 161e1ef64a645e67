"""Training-time augmentation (fer.training.preprocess), cross-fitting folds and the distillation callback (fer.training.distill),
weight averaging and class weights (fer.training.learner): the real transforms and callbacks on synthetic batches."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from fer.training.config import AUGMENT_PRESETS, Augment, parse_augment, parse_fold
from fer.training.distill import VALID_FOLD, CrossFitDistillation, FoldId, Teacher, check_teachers, fold_of
from fer.training.preprocess import (
    RandomBlur,
    RandomErase,
    RandomGamma,
    RandomJpeg,
    batch_tfms,
    inference_module,
    jpeg_quantise,
)


def faces(n: int = 16, seed: int = 0):
    from fastai.vision.all import TensorImageBW

    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0.1, 0.9, 48).expand(48, 48)
    return TensorImageBW((ramp + 0.05 * torch.rand(n, 1, 48, 48, generator=g)).clamp(0, 1))


@pytest.mark.parametrize("tfm", [RandomGamma(0.3), RandomBlur(1.0), RandomJpeg(1.0), RandomErase(1.0)])
def test_each_augmentation_changes_training_batches_only(tfm):
    x = faces()
    train, valid = tfm(x, split_idx=0), tfm(x, split_idx=1)
    assert train.shape == x.shape and type(train) is type(x) and not torch.equal(train, x)
    assert torch.equal(valid, x)


def test_per_image_probability():
    x = faces(200)
    changed = (RandomBlur(0.3)(x, split_idx=0) != x).flatten(1).any(1).float().mean()
    assert 0.15 < float(changed) < 0.45  # about 30% of the images, not all or none of the batch


def test_jpeg_artefacts_match_a_real_jpeg_encoder():
    rng = np.random.default_rng(0)
    img = (rng.random((48, 48)) * 60 + np.linspace(0, 190, 48)[None]).astype(np.uint8)
    for quality in (20, 50, 75):
        real = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 0).astype(float)
        ours = jpeg_quantise(torch.tensor(img / 255.0)[None, None].float(), torch.tensor([float(quality)]))
        ours = ours[0, 0].numpy() * 255
        assert np.abs(ours - real).mean() < 1.0 < np.abs(img - real).mean(), quality


def test_erasing_fills_one_rectangle_per_image():
    x = faces(8)
    out = RandomErase(1.0, area=(0.1, 0.1))(x, split_idx=0)
    for changed in (out != x)[:, 0]:
        rows, cols = changed.any(1).nonzero().flatten(), changed.any(0).nonzero().flatten()
        assert changed[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()  # a filled rectangle
        assert 0.05 * 48 * 48 < changed.sum() < 0.2 * 48 * 48


def test_augmentation_stays_out_of_the_inference_pipeline():
    from fastai.vision.all import IntToFloatTensor
    from fasttransform import Pipeline

    tfms = [IntToFloatTensor(), *batch_tfms(64, (0.5, 0.5), AUGMENT_PRESETS["strong"])]
    module = inference_module(Pipeline(tfms, split_idx=1))
    assert module is not None and module.size == (64, 64)
    assert Pipeline(tfms, split_idx=0)(faces()).shape == (16, 1, 64, 64)


def test_augment_options_and_their_errors():
    assert parse_augment("default", []) == Augment()
    strong = parse_augment("strong", ["erasing=0.5", "scale=0.8,1.3", "flip=false"])
    assert strong.erasing == 0.5 and strong.scale == (0.8, 1.3) and not strong.flip and strong.jpeg == 0.2
    assert parse_augment("none", []) is None
    for preset, overrides, message in (("wild", [], "--augment wild"), ("default", ["nope=1"], "KEY one of"),
                                       ("default", ["scale=1"], "bad value"), ("default", ["blur=3"], "a probability"),
                                       ("default", ["scale=1.2,0.8"], "0 < min <= max"), ("none", ["blur=1"], "none")):
        with pytest.raises(ValueError, match=message):
            parse_augment(preset, overrides)


def test_folds_follow_the_fer2013_row():
    assert fold_of("train/happy/123.png", 3) == fold_of("train/sad/123_det.png", 3) == 0
    assert parse_fold("1/3") == (1, 3) and parse_fold(None) is None
    for bad in ("3/3", "1", "0/1", "a/b"):
        with pytest.raises(ValueError, match="--fold"):
            parse_fold(bad)
    from pathlib import Path

    assert int(FoldId(2)(Path("d/train/happy/7.png"))) == 1
    assert int(FoldId(2)(Path("d/valid/happy/7.png"))) == VALID_FOLD


class Logits(torch.nn.Module):
    """A real module whose logits depend on the input: the mean brightness times a per-class weight."""

    def __init__(self, weights):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(weights, dtype=torch.float32))

    def forward(self, x):
        return x.mean((1, 2, 3))[:, None] * self.w


def test_each_face_is_labelled_by_the_teachers_that_held_out_its_fold():
    t0 = Teacher(Logits([1.0, 0.0, -1.0]), (32, 32), 0.5, 0.5, (0, 2), "t0")
    t1 = Teacher(Logits([-2.0, 0.0, 2.0]), (48, 48), 0.0, 1.0, (1, 2), "t1")
    assert check_teachers([t0, t1]) == 2
    stats = (0.5, 0.25)
    x01 = faces(6)
    label, fold = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([0, 1, 0, 1, 0, 1])
    learn = SimpleNamespace(xb=((x01 - stats[0]) / stats[1],), yb=(label, fold), training=True)
    cb = CrossFitDistillation([t0, t1], stats, 3)
    cb.learn = learn
    cb.before_batch()
    soft = learn.yb[1]
    for i in range(6):
        teacher = t0 if fold[i] == 0 else t1
        assert torch.allclose(soft[i], teacher.probs(x01[i:i + 1].as_subclass(torch.Tensor))[0], atol=1e-5)
    learn.yb, learn.training = (label, torch.full((6,), VALID_FOLD)), False
    cb.before_batch()
    assert torch.equal(learn.yb[1], torch.nn.functional.one_hot(label, 3).float())
    with pytest.raises(ValueError, match="no teacher holds out fold"):
        check_teachers([t0])
    with pytest.raises(ValueError, match="mix no such teacher"):
        check_teachers([t0, Teacher(Logits([0.0, 0.0, 0.0]), (48, 48), 0.0, 1.0, None, "plain")])


def test_weight_average_is_validated_and_the_live_weights_come_back():
    from fer.training.learner import WeightAverage

    model = torch.nn.Linear(2, 1)
    cb = WeightAverage(decay=0.5)
    cb.learn = SimpleNamespace(model=model)
    cb.before_fit()
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    cb.after_step()  # warm-up decay min(0.5, 2/11): the average moves 9/11 of the way
    live = model.weight.detach().clone()
    cb.before_validate()
    assert torch.allclose(model.weight, start + 9 / 11)
    cb.before_train()
    assert torch.equal(model.weight, live)


def test_class_weights_favour_rare_classes(tiny_data):
    from fer.training.learner import class_weights, face_dataloaders

    dls = face_dataloaders(tiny_data, 48, (0.5, 0.5), bs=8)
    names = [p.parent.name for p in dls.train_ds.items]
    counts = torch.tensor([names.count(c) for c in dls.vocab], dtype=torch.float32)
    w = class_weights(dls, 0.5)
    assert torch.allclose(w * counts.sqrt(), (w * counts.sqrt())[0])  # ∝ count^-0.5
    assert torch.isclose((w * counts).sum() / counts.sum(), torch.tensor(1.0))  # the average face weighs 1
