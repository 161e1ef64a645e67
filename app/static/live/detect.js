// YuNet face detection in the page, as fer.detect.YuNetFaceDetector with OpenCV's cv2.FaceDetectorYN: the
// frame brought down to `detectWidth` (INTER_AREA), BGR, zero-padded to a multiple of 32, the network run by
// onnxruntime-web, its outputs decoded (scores, boxes, landmarks at strides 8, 16, 32) and overlapping boxes
// dropped (OpenCV's NMSBoxes), with OpenCV's float32 arithmetic and Python's rounding.

import { Box, leftToRight, pyRound } from './box.js';
import { resizeToWidth } from './images.js';

/** @typedef {import('./images.js').Image} Image */

const STRIDES = [8, 16, 32];

/** YuNet's landmarks, in its order ("right" is the person's right: the eye on the image's left), as
 * fer.serving.detect.LANDMARK_NAMES. */
export const LANDMARK_NAMES = ['right_eye', 'left_eye', 'nose', 'mouth_right', 'mouth_left'];
const f32 = Math.fround;

/** The network's input for an image: BGR float planes (0–255), padded with zeros to multiples of 32.
 * @param {Image} image RGB or RGBA @returns {{data: Float32Array, padW: number, padH: number}} */
export function yunetInput(image) {
  const padW = (Math.floor((image.width - 1) / 32) + 1) * 32, padH = (Math.floor((image.height - 1) / 32) + 1) * 32;
  const plane = padW * padH, data = new Float32Array(3 * plane), cn = image.channels, src = image.data;
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const s = (y * image.width + x) * cn, d = y * padW + x;
      data[d] = src[s + 2]; data[plane + d] = src[s + 1]; data[2 * plane + d] = src[s];
    }
  }
  return { data, padW, padH };
}

/** Decode YuNet's outputs into rows [x, y, w, h, 10 landmark coordinates, score] (cv2.FaceDetectorYN's
 * postProcess), overlapping boxes removed.
 * @param {Object<string, Float32Array>} out the outputs by name (cls_8, obj_8, bbox_8, kps_8, ... _16, _32)
 * @param {number} padW @param {number} padH @param {number} scoreThreshold @param {number} nmsThreshold
 * @returns {number[][]} */
export function decode(out, padW, padH, scoreThreshold, nmsThreshold) {
  const faces = [];
  for (const stride of STRIDES) {
    const cols = Math.floor(padW / stride), rows = Math.floor(padH / stride);
    const cls = out[`cls_${stride}`], obj = out[`obj_${stride}`], bbox = out[`bbox_${stride}`], kps = out[`kps_${stride}`];
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        const clsScore = Math.min(Math.max(cls[i], 0), 1), objScore = Math.min(Math.max(obj[i], 0), 1);
        const score = f32(Math.sqrt(f32(clsScore * objScore)));
        if (score < scoreThreshold) continue;
        const cx = f32(f32(c + bbox[i * 4]) * stride), cy = f32(f32(r + bbox[i * 4 + 1]) * stride);
        const w = f32(f32(Math.exp(bbox[i * 4 + 2])) * stride), h = f32(f32(Math.exp(bbox[i * 4 + 3])) * stride);
        const face = [f32(cx - f32(w / 2)), f32(cy - f32(h / 2)), w, h];
        for (let n = 0; n < 5; n++) {
          face.push(f32(f32(kps[i * 10 + 2 * n] + c) * stride), f32(f32(kps[i * 10 + 2 * n + 1] + r) * stride));
        }
        face.push(score);
        faces.push(face);
      }
    }
  }
  if (faces.length <= 1) return faces;
  return nms(faces, scoreThreshold, nmsThreshold).map((i) => faces[i]);
}

/** OpenCV's dnn::NMSBoxes on integer rectangles (truncated as OpenCV does), best score first.
 * @param {number[][]} faces @param {number} scoreThreshold @param {number} nmsThreshold @returns {number[]} */
export function nms(faces, scoreThreshold, nmsThreshold) {
  const rects = faces.map((f) => f.slice(0, 4).map(Math.trunc));
  const order = faces.map((f, i) => [f[14], i]).filter(([s]) => s > scoreThreshold)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, i]) => i);
  const kept = [];
  for (const i of order) {
    if (kept.every((k) => overlap(rects[i], rects[k]) <= nmsThreshold)) kept.push(i);
  }
  return kept;
}

function overlap([ax, ay, aw, ah], [bx, by, bw, bh]) {
  const x1 = Math.max(ax, bx), y1 = Math.max(ay, by);
  const w = Math.min(ax + aw, bx + bw) - x1, h = Math.min(ay + ah, by + bh) - y1;
  const inter = w > 0 && h > 0 ? w * h : 0, a = aw * ah, b = bw * bh;
  if (a + b <= 0) return 0;
  return f32(inter / (a + b - inter));
}

/** YuNet run by an onnxruntime-web session, with fer.detect.YuNetFaceDetector's settings. */
export class YuNetDetector {
  /**
   * @param {{run: Function}} session an onnxruntime-web InferenceSession of fer/models/yunet_n_dynamic.onnx
   * @param {Function} Tensor onnxruntime-web's Tensor class
   * @param {{detectWidth: number, scoreThreshold: number, nmsThreshold: number, minFace: number}} options
   */
  constructor(session, Tensor, options) {
    this.session = session; this.Tensor = Tensor;
    this.detectWidth = options.detectWidth; this.scoreThreshold = options.scoreThreshold;
    this.nmsThreshold = options.nmsThreshold; this.minFace = options.minFace;
  }

  /** Every face in an RGB(A) image, left to right, in that image's pixels.
   * @param {Image} image @returns {Promise<Box[]>} */
  async detect(image) {
    const { image: small, factor } = resizeToWidth(image, this.detectWidth);
    const { data, padW, padH } = yunetInput(small);
    const result = await this.session.run({ [this.session.inputNames[0]]: new this.Tensor('float32', data, [1, 3, padH, padW]) });
    const out = Object.fromEntries(Object.entries(result).map(([name, tensor]) => [name, tensor.data]));
    const boxes = [];
    for (const f of decode(out, padW, padH, this.scoreThreshold, this.nmsThreshold)) {
      const points = [0, 1, 2, 3, 4].map((n) => [f[4 + 2 * n], f[5 + 2 * n]]);
      const box = new Box(pyRound(f[0]), pyRound(f[1]), pyRound(f[2]), pyRound(f[3]), points, f[14]).scale(1 / factor);
      if (Math.min(box.w, box.h) >= this.minFace) boxes.push(box.clip(image.width, image.height));
    }
    return leftToRight(boxes);
  }
}
