// The largest face's expression over the last seconds (fer.timeline.EmotionTimeline).

/** Probabilities with their times, the last `windowS` seconds kept; `due()` says when to redraw the plot. */
export class EmotionTimeline {
  /** @param {{windowS?: number, refreshS?: number}} [options] */
  constructor({ windowS = 30, refreshS = 1 } = {}) {
    this.windowS = windowS; this.refreshS = refreshS;
    /** @type {{t: number, probs: number[]}[]} times in seconds (performance.now() / 1000) */
    this.points = [];
    this.lastDrawn = -Infinity;
  }

  /** Record one frame's probabilities (null: no face, nothing recorded). @param {number[]|null} probs
   * @param {number} [now] seconds */
  add(probs, now = performance.now() / 1000) {
    if (probs) this.points.push({ t: now, probs });
    while (this.points.length && this.points[0].t < now - this.windowS) this.points.shift();
  }

  /** True at most once per `refreshS` (and marks the plot as drawn). @param {number} [now] seconds
   * @returns {boolean} */
  due(now = performance.now() / 1000) {
    if (now - this.lastDrawn < this.refreshS) return false;
    this.lastDrawn = now;
    return true;
  }
}
