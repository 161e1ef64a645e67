"""Test scenes for the detector benchmarks and the evaluation suite: real faces pasted into real background
photos, with their true face boxes. Needs scikit-image for the photos (``pip install -e '.[bench]'``).

Faces: three public-domain photos that ship with scikit-image and matplotlib (astronaut Eileen Collins,
Grace Hopper, the cameraman; their face boxes set by hand below), and FER-2013 faces when the CSV is
given. Backgrounds: scikit-image's sample photos with no people in them. A face is pasted with some of its
own surroundings (hair, collar), scaled, rotated, and blended in with a soft edge.

Besides the benchmarks, the evaluation suite (:mod:`fer.evaluation.suite`, its detector-crop cells) and
data_scripts/detector_crops.py (training crops) use :func:`random_scene`, so the measurement and the
training data see faces placed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer.serving.detect import Box

BACKGROUNDS = ("coffee", "chelsea", "rocket", "brick", "grass", "gravel", "hubble_deep_field", "coins")
#: (width, height) of a scene: a VGA photo.
SCENE_SIZE = (640, 480)
#: Smallest and largest pasted face width (pixels), drawn log-uniformly.
FACE_WIDTHS = (48.0, 240.0)
#: The tilt of a tilted face: this many degrees either way.
TILT_DEGREES = (10.0, 25.0)


@dataclass(frozen=True)
class FaceSource:
    """A photo and the box of the face in it (brows to chin, ear to ear)."""

    name: str
    image: np.ndarray  # RGB uint8
    face: Box


def photo_faces() -> list[FaceSource]:
    """The three public-domain portraits, each also mirrored."""
    import matplotlib.cbook
    from skimage import data

    hopper = cv2.cvtColor(cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))),
                          cv2.COLOR_BGR2RGB)
    sources = [FaceSource("astronaut", data.astronaut(), Box(174, 60, 102, 122)),
               FaceSource("hopper", hopper, Box(168, 112, 195, 230)),
               FaceSource("cameraman", cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2RGB), Box(196, 108, 66, 92))]
    mirrored = [FaceSource(f"{s.name}-mirrored", np.ascontiguousarray(s.image[:, ::-1]),
                           Box(s.image.shape[1] - s.face.x - s.face.w, s.face.y, s.face.w, s.face.h)) for s in sources]
    return sources + mirrored


def fer_face(pixels: np.ndarray, name: str = "fer") -> FaceSource:
    """A 48×48 FER-2013 face: the whole image is the face."""
    return FaceSource(name, cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB), Box(0, 0, pixels.shape[1], pixels.shape[0]))


def background(name: str, width: int, height: int) -> np.ndarray:
    """A scikit-image sample photo cropped and scaled to cover width×height (RGB)."""
    from skimage import data

    image = getattr(data, name)()
    image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image[..., :3]
    scale = max(width / image.shape[1], height / image.shape[0])
    image = cv2.resize(image, (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y, x = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[y:y + height, x:x + width])


def scene_backgrounds(size: tuple[int, int] = SCENE_SIZE) -> list[np.ndarray]:
    """Every background of :data:`BACKGROUNDS`, in that order, at ``size`` (width, height)."""
    return [background(name, *size) for name in BACKGROUNDS]


def random_scene(pixels: np.ndarray, rng: np.random.Generator, backgrounds: list[np.ndarray], tilted: bool,
                 widths: tuple[float, float] = FACE_WIDTHS) -> tuple[np.ndarray, Box]:
    """One grey 48×48 FER-2013 face pasted into a copy of one of ``backgrounds`` (:func:`scene_backgrounds`):
    ``(RGB scene, true face box)``. Width log-uniform in ``widths``, a random place that keeps the face
    inside, tilted :data:`TILT_DEGREES` either way when ``tilted``; the face fills its frame (no
    surroundings, a sharp edge). The draws from ``rng`` are always the same ones in the same order, so a
    seed gives the same scene."""
    height, width = backgrounds[0].shape[:2]
    face_width = float(np.exp(rng.uniform(np.log(widths[0]), np.log(widths[1]))))
    angle = float(rng.choice((-1, 1)) * rng.uniform(*TILT_DEGREES)) if tilted else 0.0
    half = face_width * 0.75
    center = (rng.uniform(half, width - half), rng.uniform(half, height - half))
    canvas = backgrounds[rng.integers(len(backgrounds))].copy()
    truth = paste(canvas, fer_face(pixels), face_width, center, angle, context=0.0, edge=0.02)
    return canvas, truth


def paste(canvas: np.ndarray, source: FaceSource, face_width: float, center: tuple[float, float],
          angle: float = 0.0, context: float = 0.5, edge: float = 0.12) -> Box:
    """Paste ``source``'s face (with ``context`` × its size of surroundings) into ``canvas`` in place, scaled so
    the face is ``face_width`` pixels wide, centred at ``center`` and rotated by ``angle`` degrees
    (counter-clockwise), blended in over the outer ``edge`` of each side; returns the face's true box in the
    canvas (the unrotated size, same centre)."""
    h, w = source.image.shape[:2]
    region = source.face.expand(context).clip(w, h)
    patch = source.image[region.y:region.y + region.h, region.x:region.x + region.w].astype(np.float32)
    alpha = feathered_mask(region.h, region.w, edge)
    scale = face_width / source.face.w
    fx, fy = source.face.center
    matrix = cv2.getRotationMatrix2D((fx - region.x, fy - region.y), angle, scale)
    matrix[:, 2] += (center[0] - (fx - region.x), center[1] - (fy - region.y))
    size = (canvas.shape[1], canvas.shape[0])
    warped = cv2.warpAffine(patch, matrix, size, flags=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    weight = cv2.warpAffine(alpha, matrix, size, flags=cv2.INTER_LINEAR)
    x, y, w, h = cv2.boundingRect((weight > 0).astype(np.uint8))  # the canvas outside stays as it is (weight 0)
    weight, under = weight[y:y + h, x:x + w, None], canvas[y:y + h, x:x + w]
    under[:] = np.clip(weight * warped[y:y + h, x:x + w] + (1 - weight) * under, 0, 255).astype(np.uint8)
    fw, fh = source.face.w * scale, source.face.h * scale
    return Box(round(center[0] - fw / 2), round(center[1] - fh / 2), round(fw), round(fh))


def feathered_mask(height: int, width: int, edge: float = 0.12) -> np.ndarray:
    """1 inside, falling to 0 over the outer ``edge`` fraction of each side."""
    ramp = lambda n: np.clip(np.minimum(np.arange(n) + 0.5, n - np.arange(n) - 0.5) / max(1.0, edge * n), 0, 1)  # noqa: E731
    return np.outer(ramp(height), ramp(width)).astype(np.float32)


def match(found: list[Box], truth: list[Box], min_iou: float = 0.25) -> tuple[dict[int, Box], list[Box]]:
    """Greedy matching by IoU: ``({truth index: detection}, unmatched detections)``. A detection counts for
    a true face when their IoU is at least ``min_iou`` and its centre lies inside the true box."""
    pairs = sorted(((t.iou(f), ti, fi) for ti, t in enumerate(truth) for fi, f in enumerate(found)), reverse=True)
    matched: dict[int, Box] = {}
    used: set[int] = set()
    for iou, ti, fi in pairs:
        cx, cy = found[fi].center
        inside = truth[ti].x <= cx <= truth[ti].x + truth[ti].w and truth[ti].y <= cy <= truth[ti].y + truth[ti].h
        if iou < min_iou:
            break
        if ti in matched or fi in used or not inside:
            continue
        matched[ti] = found[fi]
        used.add(fi)
    return matched, [f for i, f in enumerate(found) if i not in used]


def fer_test_faces(csv: str | Path, usage: str = "PrivateTest") -> tuple[list[np.ndarray], list[str]]:
    """FER-2013 faces and labels of one split (the CSV stays outside the project)."""
    from fer.core.dataset import read_rows
    from fer.core.labels import FER2013_CLASSES

    rows = [r for r in read_rows(Path(csv)) if r.usage == usage]
    return [r.pixels for r in rows], [FER2013_CLASSES[r.label] for r in rows]


# ---- test videos ------------------------------------------------------------------------------------------

#: The clip's three parts, as fractions of its length: one moving face, no face, two faces.
SEGMENTS = (0.4, 0.2, 0.4)


def clip_frames(width: int, height: int, n_frames: int):
    """RGB frames: face A moving left to right (first 40 %), the empty background (20 %), faces A and B
    (last 40 %); each face about a quarter of the frame's height wide."""
    faces = {f.name: f for f in photo_faces()}
    astronaut, hopper = faces["astronaut"], faces["hopper"]
    scene = background("coffee", width, height)
    face_w = height / 4
    first, cut = round(n_frames * SEGMENTS[0]), round(n_frames * (SEGMENTS[0] + SEGMENTS[1]))
    for i in range(n_frames):
        frame = scene.copy()
        if i < first:
            x = width * (0.3 + 0.4 * i / max(1, first - 1))
            paste(frame, astronaut, face_w, (x, height * 0.45))
        elif i >= cut:
            paste(frame, astronaut, face_w, (width * 0.28, height * 0.45))
            paste(frame, hopper, face_w, (width * 0.72, height * 0.5))
        yield frame


def write_clip(path: str | Path, width: int = 640, height: int = 480, n_frames: int = 30, fps: float = 10.0) -> Path:
    """Write :func:`clip_frames` as a video (MP4 ``mp4v``, or AVI ``MJPG`` by the file's ending)."""
    path = Path(path)
    codec = "MJPG" if path.suffix.lower() == ".avi" else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    for frame in clip_frames(width, height, n_frames):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
