"""Keeping labels steady on video: match faces across frames by IoU with where each face is expected
(its last detection moved on by its last motion) and smooth each face's probabilities with an exponential
moving average; a face unseen for a few frames is dropped, so a new face in its place starts fresh."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import count
from typing import Sequence

import numpy as np

from fer.serving.detect import Box
from fer.serving.quality import FaceQuality


@dataclass
class Track:
    """One tracked face: its id, smoothed box and probabilities, misses in a row, its latest detection and motion."""
    id: int
    box: Box  # smoothed, for drawing
    probs: np.ndarray  # smoothed class probabilities
    misses: int = 0  # consecutive frames without a matching detection
    detection: int | None = None  # index of the box it matched in the latest update (None: missed)
    last: Box | None = None  # the latest matched detection, as detected
    motion: tuple[int, int] = (0, 0)  # its centre's move between the last two detections
    quality: FaceQuality | None = None  # the latest matched detection's (set by fer.serving.recognize.VideoSession)

    def __post_init__(self):
        self.last = self.last or self.box

    @property
    def expected(self) -> Box:
        """Where the face should be now: its last detection moved on by its last motion (a face moving
        half its width per frame still overlaps this, while the smoothed box lags behind)."""
        return self.last.shift(*self.motion)

    def follow(self, detection: Box) -> None:
        """Take ``detection`` as this face's new position."""
        (x0, y0), (x1, y1) = self.last.center, detection.center
        self.motion, self.last = (round(x1 - x0), round(y1 - y0)), detection
        self.box = _blend(self.box, detection, 0.6)


@dataclass
class FaceTracker:
    """Greedy IoU matching of detections to tracks, EMA of probabilities (``alpha`` = weight of the new
    frame), tracks kept through ``max_misses`` frames without a detection (boxes do not blink)."""

    alpha: float = 0.4
    iou_threshold: float = 0.3
    max_misses: int = 3
    tracks: list[Track] = field(default_factory=list)
    _ids: count = field(default_factory=count, repr=False)

    def update(self, boxes: Sequence[Box], probs: np.ndarray) -> list[Track]:
        """Feed one frame's detections and their raw probabilities; returns the live tracks, left to right."""
        unmatched = set(range(len(boxes)))
        pairs = sorted(((t.expected.iou(b), ti, bi) for ti, t in enumerate(self.tracks)
                        for bi, b in enumerate(boxes)), reverse=True)
        matched_tracks: set[int] = set()
        for iou, ti, bi in pairs:
            if iou < self.iou_threshold:
                break
            if ti in matched_tracks or bi not in unmatched:
                continue
            track = self.tracks[ti]
            track.follow(boxes[bi])
            track.probs = self.alpha * probs[bi] + (1 - self.alpha) * track.probs
            track.misses, track.detection = 0, bi
            matched_tracks.add(ti)
            unmatched.discard(bi)
        for ti, track in enumerate(self.tracks):
            if ti not in matched_tracks:
                track.misses, track.detection = track.misses + 1, None
        self.tracks = [t for t in self.tracks if t.misses <= self.max_misses]
        self.tracks += [Track(next(self._ids), boxes[bi], np.asarray(probs[bi], dtype=np.float64), detection=bi)
                        for bi in sorted(unmatched)]
        return self.live()

    def live(self) -> list[Track]:
        """The tracks now, left to right."""
        return sorted(self.tracks, key=lambda t: t.box.x)

    def reset(self) -> None:
        """Forget every track (after a cut, or a new stream)."""
        self.tracks = []


def _blend(old: Box, new: Box, weight: float) -> Box:
    """Move a box towards the new detection (damps jitter without lagging far behind); the new detection's
    landmarks and score are kept."""
    mix = lambda a, b: round(weight * b + (1 - weight) * a)  # noqa: E731
    return replace(new, x=mix(old.x, new.x), y=mix(old.y, new.y), w=mix(old.w, new.w), h=mix(old.h, new.h))
