// The JavaScript API for other pages (as Python's `import fer`): faces and their expressions computed in the
// page with onnxruntime-web, nothing sent anywhere. docs/web.md has a copy-paste example.
//
//   import { createRecognizer } from './live/fer.js';
//   const fer = await createRecognizer();                 // the site's model and YuNet (live/config.json)
//   const faces = await fer.analyze(document.querySelector('img'));   // [{box, label, probabilities, quality, ...}]
//   const stop = fer.track(video, (faces, frame) => { ... });          // each frame of a playing <video>
//
// Probabilities are the model's calibrated ones (its temperature, from the .onnx file's metadata, as in Python);
// a face the settings' "not sure" rule calls uncertain has `uncertain` true and `label` null (`predicted` kept).
// <fer-camera> (element.js) is the whole live view as one element. analyze() and track() run in the thread
// that made the recognizer; a page that must stay smooth can make it in a worker, as <fer-camera> does.

import { loadConfig, pageUrl } from './config.js';
import { loadRecognizer } from './recognize.js';

export { Box, leftToRight } from './box.js';
export { CONFIG_URL, loadConfig } from './config.js';
export { LANDMARK_NAMES, YuNetDetector } from './detect.js';
export { FerCamera } from './element.js';
export { crop, faceCrop, facesArray, toFace } from './faces.js';
export { FaceRecognizer, VideoSession, distinctBoxes, faceOf } from './recognize.js';
export { faceQuality, isUncertain } from './quality.js';
export { toImage } from './sources.js';
export { FaceTracker, Track } from './tracking.js';

/** @typedef {import('./recognize.js').Face} Face */
/** @typedef {import('./recognize.js').FaceRecognizer} FaceRecognizerType */

/**
 * A recognizer, ready to use (both models loaded and compiled): `analyze(image)` → faces, `track(video,
 * onFaces)` → a function that stops, `session()`, `classes`.
 * @param {{model?: string|URL, detector?: string|URL, config?: string|URL|object, threads?: number}} [options]
 *   model: the expression model's .onnx (default the site's); detector: YuNet's free-size .onnx (default the
 *   site's); config: the settings (default the site's live/config.json, beside this module); threads:
 *   WebAssembly threads (more than 1 only in a cross-origin-isolated page)
 * @returns {Promise<FaceRecognizerType>}
 */
export async function createRecognizer({ model, detector, config, threads } = {}) {
  const settings = await loadConfig(config);
  if (model) {
    settings.modelUrl = new URL(model, pageUrl()).href;
    settings.modelName = new URL(settings.modelUrl).pathname.split('/').pop();
  }
  if (detector) settings.yunetUrl = new URL(detector, pageUrl()).href;
  if (threads) settings.threads = threads;
  return loadRecognizer(settings);
}
