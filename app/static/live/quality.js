// Face quality and the "not sure" rule in the page, as fer/serving/quality.py: each measure (size, detector
// score, roll, yaw, sharpness of the 48×48 classifier input) scored 0–1 between two limits, the quality the
// lowest score, its band. The limits, bands and the rule's thresholds come from the app's config
// (fer.serving.live.live_settings), so Python stays their one source.

import { FACE_SIZE } from './faces.js';

/**
 * fer.serving.quality's limits and bands, and the app's "not sure" rule (fer.serving.quality.UncertaintyRule).
 * @typedef {{size: number[], score: number[], roll: number[], yaw: number[], sharpness: number[],
 *            bands: [string, number][], poor: string}} QualitySettings
 * @typedef {{minConfidence: number, minQuality: number}} NotSureRule
 * @typedef {{quality: number, band: string, limit: string|null, size: number, score: number|null,
 *            roll: number|null, yaw: number|null, sharpness: number}} FaceQuality
 */

/** 0 at limits[0], 1 at limits[1], linear between, clipped (fer.serving.quality.ramp).
 * @param {number} value @param {number[]} limits @returns {number} */
export function ramp(value, [low, high]) {
  return Math.min(1, Math.max(0, (value - low) / (high - low)));
}

/** The variance of the 3×3 Laplacian of a grey size×size face, borders reflected as OpenCV's default
 * (cv2.Laplacian, BORDER_REFLECT_101; fer.serving.quality.sharpness). @param {Uint8Array} face
 * @param {number} [size] @returns {number} */
export function sharpness(face, size = FACE_SIZE) {
  const at = (y, x) => {
    const yy = y < 0 ? -y : y >= size ? 2 * size - 2 - y : y;
    const xx = x < 0 ? -x : x >= size ? 2 * size - 2 - x : x;
    return face[yy * size + xx];
  };
  let sum = 0, squares = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const v = at(y - 1, x) + at(y + 1, x) + at(y, x - 1) + at(y, x + 1) - 4 * at(y, x);
      sum += v; squares += v * v;
    }
  }
  const n = size * size, mean = sum / n;
  return squares / n - mean * mean;
}

/** The eye line's tilt in degrees, or null without landmarks (fer.serving.quality.roll_angle).
 * @param {import('./box.js').Box} box @returns {number|null} */
export function rollAngle(box) {
  if (box.landmarks.length < 2) return null;
  const [[rx, ry], [lx, ly]] = box.landmarks;
  return (Math.atan2(ly - ry, lx - rx) * 180) / Math.PI;
}

/** The head's turn in degrees from the nose's place between the eyes, or null (fer.serving.quality.yaw_angle).
 * @param {import('./box.js').Box} box @returns {number|null} */
export function yawAngle(box) {
  if (box.landmarks.length < 3) return null;
  const [[rx, ry], [lx, ly], [nx, ny]] = box.landmarks;
  const half = Math.hypot(lx - rx, ly - ry) / 2;
  if (half < 1e-6) return null;
  const offset = ((nx - (rx + lx) / 2) * (lx - rx) + (ny - (ry + ly) / 2) * (ly - ry)) / (2 * half) / half;
  return (Math.atan(offset) * 180) / Math.PI;
}

/** The quality of the face in `box` whose 48×48 classifier input is `face` (fer.serving.quality.face_quality).
 * @param {import('./box.js').Box} box @param {Uint8Array} face @param {QualitySettings} settings
 * @returns {FaceQuality} */
export function faceQuality(box, face, settings) {
  const size = Math.min(box.w, box.h), roll = rollAngle(box), yaw = yawAngle(box), sharp = sharpness(face);
  const log = ([a, b]) => [Math.log(a), Math.log(b)];
  const scores = { size: ramp(size, settings.size), sharpness: ramp(Math.log(Math.max(sharp, 1e-6)), log(settings.sharpness)) };
  if (box.score !== null && box.score !== undefined) scores.score = ramp(box.score, settings.score);
  if (roll !== null) scores.roll = ramp(Math.abs(roll), settings.roll);
  if (yaw !== null) scores.yaw = ramp(Math.abs(yaw), settings.yaw);
  const weakest = Object.keys(scores).reduce((a, b) => (scores[b] < scores[a] ? b : a));
  const value = scores[weakest];
  const band = (settings.bands.find(([, low]) => value >= low) || [settings.poor])[0];
  return { quality: value, band, limit: value < 1 ? weakest : null, size, score: box.score ?? null, roll, yaw,
    sharpness: sharp };
}

/** Whether a face is "not sure" under `rule` (fer.serving.quality.UncertaintyRule.is_uncertain); an unknown
 * quality is not held against it. @param {number} confidence @param {FaceQuality|null|undefined} quality
 * @param {NotSureRule|undefined} rule @returns {boolean} */
export function isUncertain(confidence, quality, rule) {
  if (!rule) return false;
  return confidence < rule.minConfidence || (quality != null && quality.quality < rule.minQuality);
}
