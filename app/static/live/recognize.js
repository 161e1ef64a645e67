// Detect → track → classify, as fer.serving.recognize does: FaceRecognizer (every face of a photo, left to right;
// a stream's session) and VideoSession, scheduled as fer.serving.recognize.VideoSession: a full-frame
// detection every few frames (and whenever nothing is tracked or a tracked face was just missed), and on the
// frames between, a small search around where each tracked face is expected. Each classified face gets its
// quality (quality.js) and the app's "not sure" rule's verdict, as in Python.

import { pyRound } from './box.js';
import { onFrames } from './camera.js';
import { LANDMARK_NAMES } from './detect.js';
import { FACE_SIZE, facesArray } from './faces.js';
import { region, resizeToWidth } from './images.js';
import { faceQuality, isUncertain } from './quality.js';
import { pixelsOf, toImage } from './sources.js';
import { FaceTracker } from './tracking.js';

/** @typedef {import('./images.js').Image} Image */
/** @typedef {import('./box.js').Box} Box */
/** @typedef {import('./tracking.js').Track} Track */
/** @typedef {import('./sources.js').ImageSource} ImageSource */

/**
 * Settings shared with the Python path (the app sends fer.recognize.VideoSession's and FaceTracker's values).
 * @typedef {{fullDetectEvery: number, searchMargin: number, searchFaceWidth: number,
 *            tracker: {alpha: number, iouThreshold: number, maxMisses: number}}} SessionOptions
 */

/**
 * One face (fer.serving.recognize.FaceResult): its box (with the detector's landmarks and score), its label (the
 * most probable class, or null when the "not sure" rule calls the face uncertain), the most probable class
 * (`predicted`, always) and its probability, every class's probability, the landmarks by name, its quality
 * (quality.js; null when unknown) and whether it is `uncertain`, and in a stream its track's number (`faceId`:
 * 1, 2, ... in order of appearance, as Python's face_id).
 * @typedef {{box: Box, label: string|null, predicted: string, confidence: number,
 *            probabilities: Object<string, number>, landmarks: Object<string, number[]>,
 *            quality: import('./quality.js').FaceQuality|null, uncertain: boolean, faceId?: number}} Face
 */

/** A face's answer as {@link Face}: not sure when `rule` says so from its top probability and `quality`
 * (fer.serving.quality.UncertaintyRule; no rule: never). @param {Box} box @param {ArrayLike<number>} probs in
 * `classes`' order @param {string[]} classes @param {number} [faceId]
 * @param {{quality?: import('./quality.js').FaceQuality|null, rule?: import('./quality.js').NotSureRule}} [judged]
 * @returns {Face} */
export function faceOf(box, probs, classes, faceId, { quality = null, rule = undefined } = {}) {
  let k = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i] > probs[k]) k = i;
  const uncertain = isUncertain(probs[k], quality, rule);
  const face = {
    box, label: uncertain ? null : classes[k], predicted: classes[k], confidence: probs[k],
    probabilities: Object.fromEntries(classes.map((c, i) => [c, probs[i]])),
    landmarks: Object.fromEntries(box.landmarks.map((p, i) => [LANDMARK_NAMES[i], p])),
    quality: quality ?? null, uncertain,
  };
  if (faceId !== undefined) face.faceId = faceId;
  return face;
}

/** The classifier's input for every box and its probabilities, one run for all, and each face's quality
 * (fer.serving.recognize.FaceRecognizer.results): null qualities without `settings`.
 * @param {import('./classify.js').Classifier} classifier @param {Image} image @param {Box[]} boxes
 * @param {import('./quality.js').QualitySettings|null|undefined} settings
 * @returns {Promise<{probs: Float32Array[], qualities: (import('./quality.js').FaceQuality|null)[]}>} */
export async function classifyFaces(classifier, image, boxes, settings) {
  if (!boxes.length) return { probs: [], qualities: [] };
  const faces = facesArray(image, boxes, classifier.crop);
  const probs = await classifier.predictProba(faces);
  const side = FACE_SIZE * FACE_SIZE;
  const qualities = boxes.map((b, i) => (settings ? faceQuality(b, faces.subarray(i * side, (i + 1) * side), settings) : null));
  return { probs, qualities };
}

/** Classifications in a row with the same most probable class after which a tracked face counts as stable. */
export const STABLE_AFTER = 3;

/** By default a stable tracked face is classified on every STABLE_EVERY-th frame only (1: as any other face):
 * fewer runs of the model for a face whose expression holds, while a change is seen within that many frames;
 * docs/results/web_speed.md measured the schedules. */
export const STABLE_EVERY = 6;

/** Per-stream state: the tracker and the detection schedule (fer.recognize.VideoSession). */
export class VideoSession {
  /**
   * @param {import('./detect.js').YuNetDetector} detector
   * @param {import('./classify.js').Classifier} classifier
   * @param {SessionOptions} options
   * @param {import('./quality.js').QualitySettings} [quality] face quality's limits (each track gets its latest
   *   classified detection's quality as `track.quality`; none without them)
   */
  constructor(detector, classifier, options, quality = null) {
    this.detector = detector; this.classifier = classifier; this.quality = quality;
    this.fullDetectEvery = options.fullDetectEvery; this.searchMargin = options.searchMargin;
    this.searchFaceWidth = options.searchFaceWidth;
    this.tracker = new FaceTracker(options.tracker);
    this.frames = 0;
    this.shape = null;
    this.classifyEvery = 1;  // classify tracked faces on every n-th frame only (the page's budget)
    this.stableEvery = 1;    // a stable tracked face (STABLE_AFTER same labels in a row): every n-th frame only
    this.labels = new Map(); // track id → {label, streak, frame}: its latest own label, how often in a row, when
  }

  /** The faces of this frame: a full detection or searches near the tracked faces.
   * @param {Image} frame @returns {Promise<{boxes: Box[], full: boolean}>} */
  async detect(frame) {
    const shape = `${frame.width}x${frame.height}`;
    if (this.shape !== shape) { this.tracker.reset(); this.shape = shape; }  // new camera or resolution
    this.frames += 1;
    const tracks = this.tracker.tracks;
    // the whole frame: on schedule, with nothing tracked, or after a tracked face was missed (it moved further than
    // its search region reached: a slow device's frames lie far apart)
    if (!tracks.length || (this.frames - 1) % this.fullDetectEvery === 0 || tracks.some((t) => t.misses > 0)) {
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
   * classified on every `classifyEvery`-th frame, stable ones ({@link STABLE_AFTER}) on every `stableEvery`-th
   * only; new faces always. A classified face's quality goes to its track (`track.quality`,
   * fer.serving.recognize.VideoSession does the same).
   * @param {Image} frame @returns {Promise<{tracks: Track[], boxes: Box[], full: boolean, classified: number}>} */
  async process(frame) {
    const { boxes, full } = await this.detect(frame);
    const due = this.classifyEvery <= 1 || this.frames % this.classifyEvery === 0;
    const tracks = this.tracker.tracks;
    const wanted = boxes.map((b) => {
      const track = this.trackOf(b, tracks);
      return !track || (due && !this.resting(track));
    });
    const chosen = boxes.filter((_, i) => wanted[i]);
    const { probs, qualities } = await classifyFaces(this.classifier, frame, chosen, this.quality);
    let k = 0;
    const all = [], quality = [];
    for (const w of wanted) {
      all.push(w ? probs[k] : null);
      quality.push(w ? qualities[k] : null);
      if (w) k += 1;
    }
    const live = this.tracker.update(boxes, all);
    for (const track of live) if (track.detection !== null && quality[track.detection]) track.quality = quality[track.detection];
    this.noteLabels(live, all);
    return { tracks: live, boxes, full, classified: chosen.length };
  }

  /** The tracked face a detection most likely is (the highest IoU with where it is expected, at least the
   * tracker's threshold), or null: a new face. @param {Box} box @param {Track[]} tracks @returns {Track|null} */
  trackOf(box, tracks) {
    let found = null, best = this.tracker.iouThreshold;
    for (const t of tracks) {
      const iou = t.expected.iou(box);
      if (iou >= best) { best = iou; found = t; }
    }
    return found;
  }

  /** Whether a stable face may skip its classification on this frame. @param {Track} track @returns {boolean} */
  resting(track) {
    const seen = this.labels.get(track.id);
    return this.stableEvery > 1 && !!seen && seen.streak >= STABLE_AFTER && this.frames - seen.frame < this.stableEvery;
  }

  /** Record each track's own label (its raw probabilities' best class) where it was classified on this frame.
   * @param {Track[]} tracks @param {(ArrayLike<number>|null)[]} probs */
  noteLabels(tracks, probs) {
    const live = new Map();
    for (const t of tracks) {
      const seen = this.labels.get(t.id);
      const raw = t.detection !== null ? probs[t.detection] : null;
      if (!raw) { if (seen) live.set(t.id, seen); continue; }
      let label = 0;
      for (let i = 1; i < raw.length; i++) if (raw[i] > raw[label]) label = i;
      const streak = seen && seen.label === label ? seen.streak + 1 : 1;
      live.set(t.id, { label, streak, frame: this.frames });
    }
    this.labels = live;
  }

  /** Run another classifier (the page's model menu switched the model) from the next frame on; the tracks
   * start over, so no smoothed probabilities of the old model linger. @param {import('./classify.js').Classifier} classifier */
  useClassifier(classifier) {
    this.classifier = classifier;
    this.tracker.reset();
    this.labels.clear();
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
 *            photoDetector?: {detectWidth: number}, crop: import('./faces.js').CropSpec, session: SessionOptions,
 *            modelInfoUrl?: string, modelName: string, correctUrl?: string, feedback?: boolean, threads?: number,
 *            stableEvery?: number, display?: 'computed'|'latest', quality?: import('./quality.js').QualitySettings,
 *            notSure?: import('./quality.js').NotSureRule}} LiveConfig
 */

/** A classifier for the model at `url` on `backend` (WebAssembly when it fails there), run once to compile it,
 * with the model's calibration temperature from the file's own metadata (as Python's OnnxFacePredictor), so
 * every path (the app, the static site, createRecognizer) gives Python's calibrated probabilities.
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

/** Detector and classifier (fer.serving.recognize.FaceRecognizer): every face of a photo (`analyze`), a session
 * for a stream (`session`), or a <video> followed frame by frame (`track`). Runs in the thread that made it. */
export class FaceRecognizer {
  /**
   * @param {import('./detect.js').YuNetDetector} detector for photos (the photo width)
   * @param {import('./detect.js').YuNetDetector} videoDetector for streams (the video width)
   * @param {import('./classify.js').Classifier} classifier
   * @param {LiveConfig} config @param {{ort: any, backend: string}} runtime @param {string} modelName
   */
  constructor(detector, videoDetector, classifier, config, runtime, modelName) {
    this.detector = detector; this.videoDetector = videoDetector; this.classifier = classifier;
    this.config = config; this.runtime = runtime; this.modelName = modelName;
    this.backend = runtime.backend;
  }

  /** The class names, in the model's output order. @returns {string[]} */
  get classes() { return this.classifier.classes; }

  /** The "not sure" rule of the settings (`config.notSure`; none: every face is sure).
   * @returns {import('./quality.js').NotSureRule|undefined} */
  get rule() { return this.config.notSure; }

  /** Every face of a picture, left to right (fer.serving.recognize.FaceRecognizer.analyze): detected at the photo
   * width, each classified, with its quality and the rule's verdict. @param {ImageSource|Image} source
   * @returns {Promise<Face[]>} */
  async analyze(source) {
    const image = await toImage(source);
    const boxes = await this.detector.detect(image);
    const { probs, qualities } = await classifyFaces(this.classifier, image, boxes, this.config.quality);
    return boxes.map((b, i) => faceOf(b, probs[i], this.classes, undefined, { quality: qualities[i], rule: this.rule }));
  }

  /** A stream's state: tracking and the detection schedule, with the video detector.
   * @param {{classifyEvery?: number, stableEvery?: number}} [options] @returns {VideoSession} */
  session({ classifyEvery = 1, stableEvery = this.config.stableEvery ?? STABLE_EVERY } = {}) {
    const session = new VideoSession(this.videoDetector, this.classifier, this.config.session, this.config.quality);
    session.classifyEvery = classifyEvery;
    session.stableEvery = stableEvery;
    return session;
  }

  /** Follow the faces of a playing <video> (a camera's, a clip's): each new frame, when the previous one is done,
   * goes through a {@link VideoSession}; `onFaces(faces, frame)` gets its tracked faces (boxes as drawn on that
   * frame, Track.shown; smoothed probabilities; the track's quality and the rule's verdict on them, as Python's
   * draw_tracks; `faceId` the track's) and the frame's capture time (performance.now() clock) and size.
   * Returns a function that stops. @param {HTMLVideoElement} video
   * @param {(faces: Face[], frame: {captureTime: number, width: number, height: number, full: boolean}) => void} onFaces
   * @returns {() => void} */
  track(video, onFaces) {
    const session = this.session();
    let busy = false;
    return onFrames(video, async (captureTime) => {
      if (busy || video.readyState < 2) return;  // one frame at a time: frames that arrive meanwhile are skipped
      busy = true;
      try {
        const frame = pixelsOf(video);
        const result = await session.process(frame);
        onFaces(result.tracks.map((t) => faceOf(t.shown, t.probs, this.classes, t.id + 1,
          { quality: t.quality, rule: this.rule })),
          { captureTime, width: frame.width, height: frame.height, full: result.full });
      } catch (e) {
        console.error(`fer: a frame failed: ${e?.message || e}`);
      } finally {
        busy = false;
      }
    });
  }

  /** Run the model at `url` from now on (the app's model menu switched it); sessions made before keep theirs
   * until given it (VideoSession.useClassifier). @param {string} url @returns {Promise<string>} its name */
  async useModel(url) {
    const model = await loadClassifier(this.runtime.ort, this.runtime.backend, url, this.config);
    this.classifier = model.classifier;
    this.modelName = model.name;
    this.backend = model.backend;
    return model.name;
  }
}

/** The runtime, YuNet and the model of `config`, as a {@link FaceRecognizer}.
 * @param {LiveConfig} config (absolute URLs) @returns {Promise<FaceRecognizer>} */
export async function loadRecognizer(config) {
  const { loadRuntime, createSession, fetchBytes } = await import('./runtime.js');
  const { YuNetDetector } = await import('./detect.js');
  const runtime = await loadRuntime(config);
  const { ort, backend } = runtime;
  const [yunetBytes, model] = await Promise.all([fetchBytes(config.yunetUrl),
    loadClassifier(ort, backend, config.modelUrl, config)]);
  // YuNet stays on WebAssembly: small dynamic-size inputs cost more in GPU dispatch than they save
  const yunet = await createSession(ort, yunetBytes, backend === 'webgpu' ? 'wasm' : backend);
  const detector = (options) => new YuNetDetector(yunet.session, ort.Tensor, options);
  const recognizer = new FaceRecognizer(detector({ ...config.detector, ...config.photoDetector }),
    detector(config.detector), model.classifier, config, runtime, model.name);
  recognizer.backend = model.backend;
  return recognizer;
}

/** Load the runtime and both models and return a fresh session for one stream, with the runtime (for
 * {@link loadClassifier} when the model is switched) and the model's name.
 * @param {LiveConfig} config
 * @returns {Promise<{session: VideoSession, backend: string, name: string, runtime: {ort: any, backend: string}}>} */
export async function loadVideoSession(config) {
  const recognizer = await loadRecognizer(config);
  return { session: recognizer.session(), backend: recognizer.backend, name: recognizer.modelName,
    runtime: recognizer.runtime };
}
