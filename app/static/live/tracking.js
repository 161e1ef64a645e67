// Keeping labels steady on video, as fer/tracking.py: faces matched across frames by IoU with where each is
// expected (its last detection moved on by its last motion), probabilities smoothed by an exponential moving
// average, a face unseen for a few frames dropped.

import { Box, pyRound } from './box.js';

/** The new detection's weight in a track's smoothed box (fer.serving.tracking.Track.follow). */
export const BOX_WEIGHT = 0.6;

/** One tracked face (fer.tracking.Track). */
export class Track {
  /** @param {number} id @param {Box} box @param {Float64Array|number[]} probs */
  constructor(id, box, probs) {
    this.id = id;
    this.box = box;          // smoothed, for drawing
    this.probs = Float64Array.from(probs);  // smoothed class probabilities
    this.misses = 0;         // consecutive frames without a matching detection
    this.detection = null;   // index of the box matched in the latest update
    this.last = box;         // the latest matched detection, as detected
    this.motion = [0, 0];    // its centre's move between the last two detections
    this.quality = null;     // the latest classified detection's quality (set by recognize.js's VideoSession)
  }

  /** Where the face should be now: its last detection moved on by its last motion. @returns {Box} */
  get expected() { return this.last.shift(this.motion[0], this.motion[1]); }

  /** Where to draw the face on the frame of the latest update: the smoothed box moved on by the smoothing's lag
   * behind a face that keeps its last motion ((1 - w) / w of it), so a moving face's box stays on it however far
   * it moves between processed frames; a track missed on that frame keeps its box. (The page's drawing only:
   * the Python path draws every frame of a file, where the lag is a pixel or two.) @returns {Box} */
  get shown() {
    if (this.misses) return this.box;
    const lag = (1 - BOX_WEIGHT) / BOX_WEIGHT;
    return this.box.shift(pyRound(lag * this.motion[0]), pyRound(lag * this.motion[1]));
  }

  /** Take `detection` as this face's new position. @param {Box} detection */
  follow(detection) {
    const [x0, y0] = this.last.center, [x1, y1] = detection.center;
    this.motion = [pyRound(x1 - x0), pyRound(y1 - y0)];
    this.last = detection;
    this.box = blend(this.box, detection, BOX_WEIGHT);
  }
}

/** Greedy IoU matching of detections to tracks, EMA of probabilities (`alpha`: the new frame's weight),
 * tracks kept through `maxMisses` frames without a detection (fer.tracking.FaceTracker). */
export class FaceTracker {
  /** @param {{alpha?: number, iouThreshold?: number, maxMisses?: number}} [options] */
  constructor({ alpha = 0.4, iouThreshold = 0.3, maxMisses = 3 } = {}) {
    this.alpha = alpha; this.iouThreshold = iouThreshold; this.maxMisses = maxMisses;
    /** @type {Track[]} */
    this.tracks = [];
    this.nextId = 0;
  }

  /** Feed one frame's detections and their probabilities; returns the live tracks, left to right. A box whose
   * probabilities are null (not classified this frame) moves its track but keeps its smoothed probabilities.
   * @param {Box[]} boxes @param {(Float32Array|number[]|null)[]} probs @returns {Track[]} */
  update(boxes, probs) {
    const unmatched = new Set(boxes.map((_, i) => i));
    const pairs = [];
    this.tracks.forEach((t, ti) => boxes.forEach((b, bi) => pairs.push([t.expected.iou(b), ti, bi])));
    pairs.sort((a, b) => b[0] - a[0] || b[1] - a[1] || b[2] - a[2]);  // Python: sorted(..., reverse=True)
    const matched = new Set();
    for (const [iou, ti, bi] of pairs) {
      if (iou < this.iouThreshold) break;
      if (matched.has(ti) || !unmatched.has(bi)) continue;
      const track = this.tracks[ti];
      track.follow(boxes[bi]);
      if (probs[bi]) {
        for (let k = 0; k < track.probs.length; k++) {
          track.probs[k] = this.alpha * probs[bi][k] + (1 - this.alpha) * track.probs[k];
        }
      }
      track.misses = 0; track.detection = bi;
      matched.add(ti); unmatched.delete(bi);
    }
    this.tracks.forEach((track, ti) => {
      if (!matched.has(ti)) { track.misses += 1; track.detection = null; }
    });
    this.tracks = this.tracks.filter((t) => t.misses <= this.maxMisses);
    for (const bi of [...unmatched].sort((a, b) => a - b)) {
      if (!probs[bi]) continue;  // a new face is only tracked once it has probabilities
      const track = new Track(this.nextId++, boxes[bi], probs[bi]);
      track.detection = bi;
      this.tracks.push(track);
    }
    return this.live();
  }

  /** @returns {Track[]} the tracks, left to right */
  live() { return [...this.tracks].sort((a, b) => a.box.x - b.box.x); }

  reset() { this.tracks = []; }
}

/** Move a box towards the new detection; the new detection's landmarks and score are kept. */
function blend(old, next, weight) {
  const mix = (a, b) => pyRound(weight * b + (1 - weight) * a);
  return new Box(mix(old.x, next.x), mix(old.y, next.y), mix(old.w, next.w), mix(old.h, next.h), next.landmarks, next.score);
}
