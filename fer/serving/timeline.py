"""The largest face's expression over the last seconds of a live stream, as a table to plot."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class EmotionTimeline:
    """Probabilities with their times, the last ``window_s`` seconds kept; ``due()`` says when a plot
    should be redrawn (every ``refresh_s`` seconds, so a stream at 10 frames/s redraws once a second)."""

    window_s: float = 30.0
    refresh_s: float = 1.0
    points: deque = field(default_factory=deque)
    last_drawn: float = float("-inf")

    def add(self, probs: dict[str, float] | None, now: float | None = None) -> None:
        """Record one frame's probabilities (None: no face in that frame, nothing recorded)."""
        now = time.monotonic() if now is None else now
        if probs:
            self.points.append((now, dict(probs)))
        while self.points and self.points[0][0] < now - self.window_s:
            self.points.popleft()

    def due(self, now: float | None = None) -> bool:
        """True at most once per ``refresh_s`` (and marks the plot as drawn)."""
        now = time.monotonic() if now is None else now
        if now - self.last_drawn < self.refresh_s:
            return False
        self.last_drawn = now
        return True

    def table(self, now: float | None = None):
        """A long pandas DataFrame: ``seconds`` (≤ 0: how long ago), ``emotion``, ``probability``."""
        import pandas as pd

        now = time.monotonic() if now is None else now
        rows = [{"seconds": round(t - now, 2), "emotion": c, "probability": round(p, 4)}
                for t, probs in self.points for c, p in probs.items()]
        return pd.DataFrame(rows, columns=["seconds", "emotion", "probability"])
