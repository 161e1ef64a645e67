// The live view's inference, off the page's main thread: camera frames (ImageBitmaps) in, tracked faces out.
// Messages: {type: 'init', config} → {type: 'ready', backend, model}; {type: 'frame', id, bitmap} →
// {type: 'result', id, tracks (id, box, probs, quality), ms, full, classified}; {type: 'reset'}; {type: 'model', rid, url} (load another
// model: the page's menu switched it) → {type: 'model', rid, name, backend}; {type: 'crop', rid} (the largest
// face for a correction) → {type: 'crop', rid, face, probs} (face null without one); failures →
// {type: 'error', id or rid, message}.

import { largestFace, loadClassifier, loadVideoSession } from './recognize.js';
import { fromImageData } from './images.js';

let session = null;
let runtime = null;    // onnxruntime-web and its backend, for switching models
let config = null;
let latest = null;     // the latest frame with a face: {frame, boxes, tracks}
let canvas = null, context = null;
let averageMs = 0;
let budgetMs = 33;
let sinceChange = 0;

function pixels(bitmap) {
  if (!canvas || canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
    canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    context = canvas.getContext('2d', { willReadFrequently: true });
  }
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return fromImageData(context.getImageData(0, 0, canvas.width, canvas.height));
}

/** Classify tracked faces less often when frames take longer than the camera's frame interval. */
function adapt(ms) {
  averageMs = averageMs ? 0.9 * averageMs + 0.1 * ms : ms;
  if (++sinceChange < 15) return;  // let the average settle after each change
  const before = session.classifyEvery;
  if (averageMs > budgetMs && before < 3) session.classifyEvery += 1;
  else if (averageMs < 0.6 * budgetMs && before > 1) session.classifyEvery -= 1;
  if (session.classifyEvery !== before) sinceChange = 0;
}

async function handle(message) {
  if (message.type === 'init') {
    config = message.config;
    const loaded = await loadVideoSession(config);
    session = loaded.session;
    runtime = loaded.runtime;
    budgetMs = config.budgetMs || budgetMs;
    const fetched = performance.getEntriesByType('resource').map((e) => [e.name, e.encodedBodySize]);
    self.postMessage({ type: 'ready', backend: loaded.backend, model: loaded.name, fetched });
  } else if (message.type === 'frame') {
    const start = performance.now();
    const frame = pixels(message.bitmap);
    const result = await session.process(frame);
    if (result.boxes.length) latest = { frame, boxes: result.boxes, tracks: result.tracks };
    const ms = performance.now() - start;
    adapt(ms);
    self.postMessage({
      type: 'result', id: message.id, ms, full: result.full, classified: result.classified,
      classifyEvery: session.classifyEvery,
      width: frame.width, height: frame.height,
      tracks: result.tracks.map((t) => ({ id: t.id, box: t.box.toJSON(), probs: Array.from(t.probs), quality: t.quality ?? null })),
    });
  } else if (message.type === 'reset') {
    session?.tracker.reset();
    latest = null;
  } else if (message.type === 'model') {
    const model = await loadClassifier(runtime.ort, runtime.backend, message.url, config);
    session.useClassifier(model.classifier);
    latest = null;
    self.postMessage({ type: 'model', rid: message.rid, name: model.name, backend: model.backend });
  } else if (message.type === 'crop') {
    const found = latest && largestFace(latest.frame, latest.boxes, latest.tracks, session.classifier.crop);
    self.postMessage({ type: 'crop', rid: message.rid, face: found ? found.face : null, probs: found ? found.probs : null });
  }
}

self.onmessage = (event) => {
  handle(event.data).catch((e) => {
    if (event.data.bitmap) event.data.bitmap.close?.();
    self.postMessage({ type: 'error', id: event.data.id, rid: event.data.rid,
      message: String(e && e.message ? e.message : e) });
  });
};
