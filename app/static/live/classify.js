// The expression classifier in the page: the app's own .onnx (uint8 grey faces (N, 1, 48, 48) in, logits
// out, its preprocessing compiled in; classes in its metadata), run by onnxruntime-web, softmax as
// fer.onnx_predict.softmax.

import { FACE_SIZE, facesArray } from './faces.js';

/** @typedef {import('./images.js').Image} Image */
/** @typedef {import('./box.js').Box} Box */

/** Row-wise softmax of (n, k) logits. @param {Float32Array} logits @param {number} k @returns {Float32Array[]} */
export function softmax(logits, k) {
  const rows = [];
  for (let i = 0; i < logits.length; i += k) {
    const row = logits.subarray(i, i + k), top = Math.max(...row);
    const e = Float32Array.from(row, (v) => Math.exp(v - top));
    const sum = e.reduce((a, b) => a + b, 0);
    rows.push(e.map((v) => v / sum));
  }
  return rows;
}

/** The classifier: crops faces as the Python path does and returns their class probabilities. */
export class Classifier {
  /**
   * @param {{run: Function, inputNames: string[]}} session onnxruntime-web session of the app's model
   * @param {Function} Tensor onnxruntime-web's Tensor class
   * @param {string[]} classes class names in the model's output order
   * @param {import('./faces.js').CropSpec} crop how faces are cut out (fer.detect.CropSpec)
   */
  constructor(session, Tensor, classes, crop) {
    this.session = session; this.Tensor = Tensor; this.classes = classes; this.crop = crop;
  }

  /** Probabilities for 48×48 grey faces stacked in `faces`. @param {Uint8Array} faces @returns {Promise<Float32Array[]>} */
  async predictProba(faces) {
    const n = faces.length / (FACE_SIZE * FACE_SIZE);
    if (n === 0) return [];
    const input = new this.Tensor('uint8', faces, [n, 1, FACE_SIZE, FACE_SIZE]);
    const result = await this.session.run({ [this.session.inputNames[0]]: input });
    return softmax(result[this.session.outputNames[0]].data, this.classes.length);
  }

  /** Probabilities for every box of an RGB(A) frame, one run for all faces (fer.recognize.FaceRecognizer.classify).
   * @param {Image} image @param {Box[]} boxes @returns {Promise<Float32Array[]>} */
  classify(image, boxes) {
    return this.predictProba(facesArray(image, boxes, this.crop));
  }
}
