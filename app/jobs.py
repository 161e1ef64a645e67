"""Video jobs that share the machine fairly: the one with the least left to do goes next, frame by frame.

Up to ``VIDEO_JOBS`` clips are analysed side by side (more wait in Gradio's queue, which shows each viewer its
place). Between two frames each job asks :meth:`ShortestFirst.turn` whether it may go on: it may when no other
job has less work left (frames left × pixels a frame, from the clip's header), else it waits. So a short clip
waits for at most one step of a longer one (a frame, or every 16th frame the classification, drawing and
encoding of those 16), and finishes within its own time plus that (docs/sharing.md states the bound, 3 s, and
benchmarks/video_fairness.py measures it); a longer one is paused while shorter ones run. A viewer's job can be
cancelled between two frames.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field


class JobCancelled(Exception):
    """The viewer cancelled this job (it stops between two frames)."""


@dataclass
class Job:
    """One clip being analysed for ``owner`` (a page session): its work left and whether it was cancelled."""

    owner: str
    order: int
    left: float = float("inf")  # unknown until the clip's header is read
    cancelled: bool = False
    waited_s: float = 0.0
    frames: int = 0


@dataclass
class ShortestFirst:
    """The jobs running now, and whose turn it is: the least work left, the earlier job on a tie."""

    jobs: list[Job] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _count: itertools.count = field(default_factory=itertools.count, repr=False)

    @contextmanager
    def job(self, owner: str):
        """Register a job for ``owner`` while the block runs; yields the :class:`Job`."""
        with self._changed:
            job = Job(owner, next(self._count))
            self.jobs.append(job)
        try:
            yield job
        finally:
            with self._changed:
                self.jobs.remove(job)
                self._changed.notify_all()

    def turn(self, job: Job, left: float, waiting: Callable[[Job], None] | None = None) -> None:
        """Before the next frame of ``job``, which has ``left`` work to do: return when it is its turn (no job
        has less left), calling ``waiting(job)`` first if it has to wait; JobCancelled once it is cancelled."""
        with self._changed:
            job.left = left
            self._changed.notify_all()  # the order may have changed: a waiting job may go now
            go = self._may_go(job)
        if not go:
            if waiting:
                waiting(job)
            start = time.monotonic()
            with self._changed:
                self._changed.wait_for(lambda: self._may_go(job))
            job.waited_s += time.monotonic() - start
        if job.cancelled:
            raise JobCancelled(f"cancelled after {job.frames} frames")
        job.frames += 1

    def _may_go(self, job: Job) -> bool:
        return job.cancelled or self.next_job() is job

    def next_job(self) -> Job | None:
        """The job whose turn it is."""
        return min(self.jobs, key=lambda j: (j.left, j.order), default=None)

    def cancel(self, owner: str) -> int:
        """Cancel ``owner``'s jobs (they stop before their next frame); returns how many there were."""
        with self._changed:
            mine = [j for j in self.jobs if j.owner == owner]
            for job in mine:
                job.cancelled = True
            self._changed.notify_all()
        return len(mine)


def work_left(frames_expected: int, frames_done: int, pixels: int, max_frames: int) -> float:
    """A job's work left: its frames left (those its header announces, up to ``max_frames``; once past them,
    as many as the limit still allows, so a header that understates a clip does not keep it ahead) × pixels."""
    total = min(frames_expected, max_frames) if frames_expected > frames_done else max_frames
    return max(1, total - frames_done) * max(1, pixels)
