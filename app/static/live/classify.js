// The expression classifier in the page: the app's own .onnx (uint8 grey faces (N, 1, 48, 48) in, logits
// out, its preprocessing compiled in; classes in its metadata), run by onnxruntime-web, softmax of the logits
// divided by the model's calibration temperature as fer.serving.onnx_predict.OnnxFacePredictor does. The
// temperature is read from the model file's own metadata (onnxruntime-web does not expose it), so the page and
// Python give the same calibrated probabilities for whichever model the page runs.

import { FACE_SIZE, facesArray } from './faces.js';

/** @typedef {import('./images.js').Image} Image */
/** @typedef {import('./box.js').Box} Box */

/** The ONNX metadata key of the calibration temperature (fer.serving.onnx_predict.TEMPERATURE_KEY). */
export const TEMPERATURE_KEY = 'fer.temperature';

/** An ONNX model's metadata (key → value), read from the file's bytes: the top-level fields of its ModelProto
 * (protobuf), skipping the graph, and the key and value of each metadata_props entry (field 14).
 * @param {ArrayBuffer|Uint8Array} bytes @returns {Object<string, string>} */
export function onnxMetadata(bytes) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const text = new TextDecoder();
  /** Each field of the message in data[start, end): visit(field, wire type, value or [from, to] of its bytes). */
  const fields = (start, end, visit) => {
    let pos = start;
    const varint = () => {
      let value = 0, scale = 1, byte;
      do {
        if (pos >= end) throw new Error('not an ONNX model: its data ends inside a number');
        byte = data[pos++];
        value += (byte & 0x7f) * scale;
        scale *= 128;
      } while (byte & 0x80);
      return value;
    };
    while (pos < end) {
      const tag = varint(), field = Math.floor(tag / 8), wire = tag % 8;
      if (wire === 0) visit(field, wire, varint());
      else if (wire === 2) { const length = varint(); visit(field, wire, [pos, pos + length]); pos += length; }
      else if (wire === 1 || wire === 5) pos += wire === 1 ? 8 : 4;
      else throw new Error(`not an ONNX model: wire type ${wire}`);
      if (pos > end) throw new Error('not an ONNX model: a field runs past its end');
    }
  };
  const metadata = {};
  fields(0, data.length, (field, wire, span) => {
    if (field !== 14 || wire !== 2) return;
    const entry = {};
    fields(span[0], span[1], (f, w, [from, to]) => {
      if (w === 2 && (f === 1 || f === 2)) entry[f === 1 ? 'key' : 'value'] = text.decode(data.subarray(from, to));
    });
    if (entry.key !== undefined) metadata[entry.key] = entry.value ?? '';
  });
  return metadata;
}

/** The calibration temperature in a model's metadata (1 when it has none), as
 * fer.serving.onnx_predict.read_temperature. @param {Object<string, string>} metadata @returns {number} */
export function modelTemperature(metadata) {
  const text = metadata[TEMPERATURE_KEY] ?? '1';
  const temperature = Number(text);
  if (!(Number.isFinite(temperature) && temperature > 0)) {
    throw new Error(`its ${TEMPERATURE_KEY} metadata is '${text}', not a positive number`);
  }
  return temperature;
}

/** Row-wise softmax of (n, k) logits divided by `temperature`. @param {Float32Array} logits @param {number} k
 * @param {number} [temperature] @returns {Float32Array[]} */
export function softmax(logits, k, temperature = 1) {
  const rows = [];
  for (let i = 0; i < logits.length; i += k) {
    const row = Float32Array.from(logits.subarray(i, i + k), (v) => v / temperature), top = Math.max(...row);
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
   * @param {number} [temperature] the model's calibration temperature ({@link modelTemperature})
   */
  constructor(session, Tensor, classes, crop, temperature = 1) {
    this.session = session; this.Tensor = Tensor; this.classes = classes; this.crop = crop;
    this.temperature = temperature;
  }

  /** Probabilities for 48×48 grey faces stacked in `faces`. @param {Uint8Array} faces @returns {Promise<Float32Array[]>} */
  async predictProba(faces) {
    const n = faces.length / (FACE_SIZE * FACE_SIZE);
    if (n === 0) return [];
    const input = new this.Tensor('uint8', faces, [n, 1, FACE_SIZE, FACE_SIZE]);
    const result = await this.session.run({ [this.session.inputNames[0]]: input });
    return softmax(result[this.session.outputNames[0]].data, this.classes.length, this.temperature);
  }

  /** Probabilities for every box of an RGB(A) frame, one run for all faces (fer.recognize.FaceRecognizer.classify).
   * @param {Image} image @param {Box[]} boxes @returns {Promise<Float32Array[]>} */
  classify(image, boxes) {
    return this.predictProba(facesArray(image, boxes, this.crop));
  }
}
