// Boxes in pixels, as fer/detect.py's Box: the same fields, the same rounding (Python's round: half to even).

/** Python's round(): to the nearest integer, halves to the even one (also OpenCV's cvRound).
 * @param {number} x
 * @returns {number} */
export function pyRound(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** An axis-aligned box: top-left (x, y), width w, height h; five landmarks [x, y] and a score when the
 * detector gives them (fer.detect.Box). Methods return new boxes. */
export class Box {
  /**
   * @param {number} x @param {number} y @param {number} w @param {number} h
   * @param {number[][]} [landmarks] five [x, y] points (eyes, nose, mouth corners)
   * @param {number|null} [score]
   */
  constructor(x, y, w, h, landmarks = [], score = null) {
    this.x = x; this.y = y; this.w = w; this.h = h;
    this.landmarks = landmarks; this.score = score;
  }

  /** @returns {number} */
  get area() { return Math.max(0, this.w) * Math.max(0, this.h); }

  /** @returns {number[]} [cx, cy] */
  get center() { return [this.x + this.w / 2, this.y + this.h / 2]; }

  /** The area the two boxes share. @param {Box} other @returns {number} */
  intersection(other) {
    const ix = Math.max(0, Math.min(this.x + this.w, other.x + other.w) - Math.max(this.x, other.x));
    const iy = Math.max(0, Math.min(this.y + this.h, other.y + other.h) - Math.max(this.y, other.y));
    return ix * iy;
  }

  /** Intersection over union. @param {Box} other @returns {number} */
  iou(other) {
    const inter = this.intersection(other);
    const union = this.area + other.area - inter;
    return union > 0 ? inter / union : 0;
  }

  /** The share of the smaller box inside the other (1: one lies within the other). @param {Box} other @returns {number} */
  overlap(other) {
    const smaller = Math.min(this.area, other.area);
    return smaller > 0 ? this.intersection(other) / smaller : 0;
  }

  /** The part inside a width×height image (at least 1×1). @param {number} width @param {number} height @returns {Box} */
  clip(width, height) {
    const x0 = Math.min(Math.max(this.x, 0), width - 1);
    const y0 = Math.min(Math.max(this.y, 0), height - 1);
    const x1 = Math.min(Math.max(this.x + this.w, x0 + 1), width);
    const y1 = Math.min(Math.max(this.y + this.h, y0 + 1), height);
    return new Box(x0, y0, x1 - x0, y1 - y0, this.landmarks, this.score);
  }

  /** Grown by margin × size on every side. @param {number} margin @returns {Box} */
  expand(margin) {
    const dx = pyRound(this.w * margin), dy = pyRound(this.h * margin);
    return new Box(this.x - dx, this.y - dy, this.w + 2 * dx, this.h + 2 * dy, this.landmarks, this.score);
  }

  /** The square with the same centre whose side is the longer of width and height. @returns {Box} */
  square() {
    const side = Math.max(this.w, this.h);
    return new Box(this.x - Math.floor((side - this.w) / 2), this.y - Math.floor((side - this.h) / 2), side, side,
      this.landmarks, this.score);
  }

  /** @param {number} factor @returns {Box} */
  scale(factor) {
    return new Box(pyRound(this.x * factor), pyRound(this.y * factor), pyRound(this.w * factor),
      pyRound(this.h * factor), this.landmarks.map(([px, py]) => [px * factor, py * factor]), this.score);
  }

  /** @param {number} dx @param {number} dy @returns {Box} */
  shift(dx, dy) {
    return new Box(this.x + dx, this.y + dy, this.w, this.h,
      this.landmarks.map(([px, py]) => [px + dx, py + dy]), this.score);
  }

  /** A plain object for postMessage and JSON. */
  toJSON() {
    return { x: this.x, y: this.y, w: this.w, h: this.h, landmarks: this.landmarks, score: this.score };
  }

  /** @param {{x: number, y: number, w: number, h: number, landmarks?: number[][], score?: number|null}} o @returns {Box} */
  static from(o) { return new Box(o.x, o.y, o.w, o.h, o.landmarks || [], o.score ?? null); }
}

/** Boxes sorted left to right (then top to bottom), as fer.detect.left_to_right. @param {Box[]} boxes @returns {Box[]} */
export function leftToRight(boxes) {
  return [...boxes].sort((a, b) => a.x - b.x || a.y - b.y);
}
