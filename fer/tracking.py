"""Keeping labels steady on video: match faces across frames by IoU and smooth each face's
probabilities with an exponential moving average; a face unseen for a few frames is dropped, so a
new face in its place starts fresh."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import count
from typing import Sequence

import numpy as np

from fer.detect import Box


@dataclass
class Track:
    id: int
    box: Box
    probs: np.ndarray  # smoothed class probabilities
    misses: int = 0  # consecutive frames without a matching detection
    detection: int | None = None  # index of the box it matched in the latest update (None: missed)


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
        pairs = sorted(((t.box.iou(b), ti, bi) for ti, t in enumerate(self.tracks) for bi, b in enumerate(boxes)),
                       reverse=True)
        matched_tracks: set[int] = set()
        for iou, ti, bi in pairs:
            if iou < self.iou_threshold:
                break
            if ti in matched_tracks or bi not in unmatched:
                continue
            track = self.tracks[ti]
            track.box = _blend(track.box, boxes[bi], 0.6)
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
        return sorted(self.tracks, key=lambda t: t.box.x)

    def reset(self) -> None:
        self.tracks = []


def _blend(old: Box, new: Box, weight: float) -> Box:
    """Move a box towards the new detection (damps jitter without lagging far behind); the new detection's
    landmarks and score are kept."""
    mix = lambda a, b: round(weight * b + (1 - weight) * a)  # noqa: E731
    return replace(new, x=mix(old.x, new.x), y=mix(old.y, new.y), w=mix(old.w, new.w), h=mix(old.h, new.h))
