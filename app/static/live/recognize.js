// Detect → track → classify on a live stream, scheduled as fer.recognize.VideoSession does: a full-frame
// detection every few frames (and whenever nothing is tracked), and on the frames between, a small search
// around where each tracked face is expected.

import { pyRound } from './box.js';
import { FACE_SIZE, facesArray } from './faces.js';
import { region, resizeToWidth } from './images.js';
import { faceQuality } from './quality.js';
import { FaceTracker } from './tracking.js';

/** @typedef {import('./images.js').Image} Image */
/** @typedef {import('./box.js').Box} Box */
/** @typedef {import('./tracking.js').Track} Track */

/**
 * Settings shared with the Python path (the app sends fer.recognize.VideoSession's and FaceTracker's values).
 * @typedef {{fullDetectEvery: number, searchMargin: number, searchFaceWidth: number,
 *            tracker: {alpha: number, iouThreshold: number, maxMisses: number}}} SessionOptions
 */

/** Per-stream state: the tracker and the detection schedule (fer.recognize.VideoSession). */
export class VideoSession {
  /**
   * @param {import('./detect.js').YuNetDetector} detector
   * @param {import('./classify.js').Classifier} classifier
   * @param {SessionOptions} options
   * @param {import('./quality.js').QualitySettings} [quality] face quality's limits (each track gets its latest
   *   detection's quality as `track.quality`; none without them)
   */
  constructor(detector, classifier, options, quality = null) {
    this.detector = detector; this.classifier = classifier; this.quality = quality;
    this.fullDetectEvery = options.fullDetectEvery; this.searchMargin = options.searchMargin;
    this.searchFaceWidth = options.searchFaceWidth;
    this.tracker = new FaceTracker(options.tracker);
    this.frames = 0;
    this.shape = null;
    this.classifyEvery = 1;  // classify tracked faces on every n-th frame only (the page's budget)
  }

  /** The faces of this frame: a full detection or searches near the tracked faces.
   * @param {Image} frame @returns {Promise<{boxes: Box[], full: boolean}>} */
  async detect(frame) {
    const shape = `${frame.width}x${frame.height}`;
    if (this.shape !== shape) { this.tracker.reset(); this.shape = shape; }  // new camera or resolution
    this.frames += 1;
    if (!this.tracker.tracks.length || (this.frames - 1) % this.fullDetectEvery === 0) {
      return { boxes: await this.detector.detect(frame), full: true };
    }
    const found = [];
    for (const track of this.tracker.tracks) found.push(...await this.searchNear(frame, track.expected));
    return { boxes: distinctBoxes(found), full: false };
  }

  /** Faces in the region around `around`, searched at reduced scale. @param {Image} frame @param {Box} around
   * @returns {Promise<Box[]>} */
  async searchNear(frame, around) {
    const r = around.expand(this.searchMargin).clip(frame.width, frame.height);
    const roi = region(frame, r.x, r.y, r.w, r.h);
    const { image: small, factor } = resizeToWidth(roi, pyRound(roi.width * this.searchFaceWidth / Math.max(around.w, 1)));
    return (await this.detector.detect(small)).map((b) => b.scale(1 / factor).shift(r.x, r.y));
  }

  /** One frame → the live tracks (fer.recognize.annotate_frame without the drawing). Tracked faces are
   * classified on every `classifyEvery`-th frame; new faces always. A classified face's quality goes to its
   * track (`track.quality`, fer.serving.recognize.VideoSession does the same).
   * @param {Image} frame @returns {Promise<{tracks: Track[], boxes: Box[], full: boolean, classified: number}>} */
  async process(frame) {
    const { boxes, full } = await this.detect(frame);
    const due = this.classifyEvery <= 1 || this.frames % this.classifyEvery === 0;
    const expected = this.tracker.tracks.map((t) => t.expected);
    const wanted = boxes.map((b) => due || expected.every((e) => e.iou(b) < this.tracker.iouThreshold));
    const chosen = boxes.filter((_, i) => wanted[i]);
    const faces = facesArray(frame, chosen, this.classifier.crop);
    const probs = chosen.length ? await this.classifier.predictProba(faces) : [];
    const side = FACE_SIZE * FACE_SIZE;
    let k = 0;
    const all = [], qualities = [];
    wanted.forEach((w, i) => {
      all.push(w ? probs[k] : null);
      qualities.push(w && this.quality ? faceQuality(boxes[i], faces.subarray(k * side, (k + 1) * side), this.quality) : null);
      k += w ? 1 : 0;
    });
    const tracks = this.tracker.update(boxes, all);
    for (const track of tracks) if (track.detection !== null && qualities[track.detection]) track.quality = qualities[track.detection];
    return { tracks, boxes, full, classified: chosen.length };
  }

  /** Run another classifier (the page's model menu switched the model) from the next frame on; the tracks
   * start over, so no smoothed probabilities of the old model linger. @param {import('./classify.js').Classifier} classifier */
  useClassifier(classifier) {
    this.classifier = classifier;
    this.tracker.reset();
  }
}

/** One box per face when the searches near two tracked faces found it twice (the smaller box at least
 * `overlap` inside the other, Box.overlap): the one with the higher detector score, so a face cut by the edge
 * of another face's search region does not stand for it; the kept boxes in their found order
 * (fer.recognize.distinct_boxes).
 * @param {import('./box.js').Box[]} boxes @param {number} [overlap] @returns {import('./box.js').Box[]} */
export function distinctBoxes(boxes, overlap = 0.5) {
  const order = boxes.map((_, i) => i).sort((a, b) => (boxes[b].score ?? 0) - (boxes[a].score ?? 0));  // stable
  const kept = [];
  for (const i of order) if (kept.every((j) => boxes[i].overlap(boxes[j]) < overlap)) kept.push(i);
  return kept.sort((a, b) => a - b).map((i) => boxes[i]);
}

/** What a correction of the live view saves (fer.recognize.annotate_frame's session.largest): the classifier's
 * input for the largest face detected in `frame` (48×48 grey, row-major) and the smoothed probabilities shown
 * for the largest track; null without a face. @param {Image} frame @param {Box[]} boxes @param {Track[]} tracks
 * @param {import('./faces.js').CropSpec} crop @returns {{face: Uint8Array, probs: number[]}|null} */
export function largestFace(frame, boxes, tracks, crop) {
  if (!boxes.length || !tracks.length) return null;
  const box = boxes.reduce((best, b) => (b.area > best.area ? b : best));
  return { face: facesArray(frame, [box], crop), probs: Array.from(largest(tracks).probs) };
}

/** The largest tracked face (the one whose probabilities the page shows), or null. @param {Track[]} tracks
 * @returns {Track|null} */
export function largest(tracks) {
  return tracks.reduce((best, t) => (!best || t.box.area > best.box.area ? t : best), null);
}

/**
 * What the app tells the page (app/main.py, live_view_config): where the runtime and models are, and the
 * Python path's settings.
 * @typedef {{ortBase: string, webgpu: boolean, yunetUrl: string, modelUrl: string, classes: string[],
 *            detector: {detectWidth: number, scoreThreshold: number, nmsThreshold: number, minFace: number},
 *            crop: import('./faces.js').CropSpec, session: SessionOptions, modelInfoUrl: string, modelName: string,
 *            correctUrl: string, feedback: boolean, quality: import('./quality.js').QualitySettings,
 *            notSure: import('./quality.js').NotSureRule}} LiveConfig
 */

/** A classifier for the model at `url` on `backend` (WebAssembly when it fails there), run once to compile it.
 * `name`: the model file's name, as the app sends it (the X-Fer-Model header).
 * @param {any} ort onnxruntime-web @param {string} backend @param {string} url @param {LiveConfig} config
 * @returns {Promise<{classifier: import('./classify.js').Classifier, backend: string, name: string}>} */
export async function loadClassifier(ort, backend, url, config) {
  const { createSession, fetchModel } = await import('./runtime.js');
  const { Classifier, modelTemperature, onnxMetadata } = await import('./classify.js');
  const { bytes, name } = await fetchModel(url);
  const temperature = modelTemperature(onnxMetadata(bytes));  // read before the runtime takes the bytes
  let model = await createSession(ort, bytes, backend);
  let classifier = new Classifier(model.session, ort.Tensor, config.classes, config.crop, temperature);
  try {
    await classifier.predictProba(new Uint8Array(48 * 48));  // a first run: compiles, and proves the backend works
  } catch (e) {
    if (model.backend === 'wasm') throw e;
    console.warn(`fer: the model failed on ${model.backend} (${e}); using WebAssembly`);
    model = await createSession(ort, bytes, 'wasm');
    classifier = new Classifier(model.session, ort.Tensor, config.classes, config.crop, temperature);
  }
  return { classifier, backend: model.backend, name };
}

/** Load the runtime and both models and return a fresh session for one stream, with the runtime (for
 * {@link loadClassifier} when the model is switched) and the model's name.
 * @param {LiveConfig} config
 * @returns {Promise<{session: VideoSession, backend: string, name: string, runtime: {ort: any, backend: string}}>} */
export async function loadVideoSession(config) {
  const { loadRuntime, createSession, fetchBytes } = await import('./runtime.js');
  const { YuNetDetector } = await import('./detect.js');
  const { ort, backend } = await loadRuntime(config);
  const [yunetBytes, model] = await Promise.all([fetchBytes(config.yunetUrl),
    loadClassifier(ort, backend, config.modelUrl, config)]);
  // YuNet stays on WebAssembly: small dynamic-size inputs cost more in GPU dispatch than they save
  const yunet = await createSession(ort, yunetBytes, backend === 'webgpu' ? 'wasm' : backend);
  const detector = new YuNetDetector(yunet.session, ort.Tensor, config.detector);
  return { session: new VideoSession(detector, model.classifier, config.session, config.quality), backend: model.backend,
    name: model.name, runtime: { ort, backend } };
}
