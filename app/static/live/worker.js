// The live view's inference, off the page's main thread: camera frames (ImageBitmaps) in, tracked faces out.
// Messages: {type: 'init', config} → {type: 'ready', backend, threads, model}; {type: 'frame', id, bitmap} →
// {type: 'result', id, tracks (id, box, shown, probs, misses, quality), ms, full, classified, bitmap} (the frame
// handed back, so the page can show it with its own boxes); {type: 'reset'}; {type: 'photo', rid, bitmap} (every
// face of a photo, each with its quality and the "not sure" rule's verdict) → {type: 'photo', rid, faces, width,
// height, bitmap}; {type: 'model', rid, url} (load another model: the page's menu switched it) →
// {type: 'model', rid, name, backend}; {type: 'crop', rid} (the largest face for a correction) → {type: 'crop',
// rid, face, probs} (face null without one); {type: 'options', classifyEvery?, stableEvery?} (for measuring:
// classifyEvery a number, or 'budget' to follow the frame budget again, as by default);
// failures → {type: 'error', id or rid, message}.

import { largestFace, loadRecognizer } from './recognize.js';
import { pixelsOf } from './sources.js';

let recognizer = null;
let session = null;
let latest = null;     // the latest frame with a face: {frame, boxes, tracks}
let averageMs = 0;
let budgetMs = 33;
let sinceChange = 0;
let adaptive = true;   // classifyEvery follows the budget unless an 'options' message fixes it

/** Classify tracked faces less often when frames take longer than the camera's frame interval. */
function adapt(ms) {
  averageMs = averageMs ? 0.9 * averageMs + 0.1 * ms : ms;
  // let the average settle after each change: about a second of frames (15 at most, 3 at least on a slow device)
  const settle = Math.min(15, Math.max(3, Math.round(1000 / averageMs)));
  if (!adaptive || ++sinceChange < settle) return;
  const before = session.classifyEvery;
  if (averageMs > budgetMs && before < 3) session.classifyEvery += 1;
  else if (averageMs < 0.6 * budgetMs && before > 1) session.classifyEvery -= 1;
  if (session.classifyEvery !== before) sinceChange = 0;
}

// each track's smoothed box, its box as drawn on this frame (Track.shown), its smoothed probabilities, its misses,
// its latest classified detection's quality
const trackView = (t) => ({ id: t.id, box: t.box.toJSON(), shown: t.shown.toJSON(), probs: Array.from(t.probs),
  misses: t.misses, quality: t.quality ?? null });

async function handle(message) {
  if (message.type === 'init') {
    const config = message.config;
    recognizer = await loadRecognizer(config);
    session = recognizer.session();
    budgetMs = config.budgetMs || budgetMs;
    const fetched = performance.getEntriesByType('resource').map((e) => [e.name, e.encodedBodySize]);
    self.postMessage({ type: 'ready', backend: recognizer.backend, threads: recognizer.runtime.threads,
      model: recognizer.modelName, fetched });
  } else if (message.type === 'frame') {
    const start = performance.now();
    const frame = pixelsOf(message.bitmap);
    const result = await session.process(frame);
    if (result.boxes.length) latest = { frame, boxes: result.boxes, tracks: result.tracks };
    const ms = performance.now() - start;
    adapt(ms);
    self.postMessage({
      type: 'result', id: message.id, ms, full: result.full, classified: result.classified,
      classifyEvery: session.classifyEvery, width: frame.width, height: frame.height,
      tracks: result.tracks.map(trackView), bitmap: message.bitmap,
    }, [message.bitmap]);
  } else if (message.type === 'photo') {
    const faces = await recognizer.analyze(pixelsOf(message.bitmap, true));
    self.postMessage({ type: 'photo', rid: message.rid, width: message.bitmap.width, height: message.bitmap.height,
      faces: faces.map((f) => ({ ...f, box: f.box.toJSON() })), bitmap: message.bitmap }, [message.bitmap]);
  } else if (message.type === 'reset') {
    session?.tracker.reset();
    latest = null;
  } else if (message.type === 'options') {
    if (message.classifyEvery === 'budget') { adaptive = true; sinceChange = 0; }
    else if (message.classifyEvery) { session.classifyEvery = message.classifyEvery; adaptive = false; }
    if (message.stableEvery) session.stableEvery = message.stableEvery;
  } else if (message.type === 'model') {
    const name = await recognizer.useModel(message.url);
    session.useClassifier(recognizer.classifier);
    latest = null;
    self.postMessage({ type: 'model', rid: message.rid, name, backend: recognizer.backend });
  } else if (message.type === 'crop') {
    const found = latest && largestFace(latest.frame, latest.boxes, latest.tracks, session.classifier.crop);
    self.postMessage({ type: 'crop', rid: message.rid, face: found ? found.face : null, probs: found ? found.probs : null });
  }
}

let queue = Promise.resolve();  // one message at a time: a photo and a frame never run the same session at once

self.onmessage = (event) => {
  queue = queue.then(() => handle(event.data)).catch((e) => {
    if (event.data.bitmap) event.data.bitmap.close?.();
    self.postMessage({ type: 'error', id: event.data.id, rid: event.data.rid,
      message: String(e && e.message ? e.message : e) });
  });
};
