// The live view (the app's Webcam tab, the static site, <fer-camera>): the camera picture with each face's box and
// label ("?" where the app's "not sure" rule, config.notSure, calls the face so), the largest face's probabilities
// and quality, and its last seconds, all computed in this page (worker.js runs YuNet
// and the model with onnxruntime-web). Frames never leave the device. Each processed frame is shown with the
// boxes computed for it (display 'computed'), so boxes stay on the faces however slowly frames are processed;
// display 'latest' draws the last boxes over the live video instead (as before; kept for comparison). In the
// app, the switch #where moves processing to the server (the Gradio stream beside this view); browsers without
// WebAssembly are moved there automatically.
//
// The bar names the model the page runs; the app's model menu (with --feedback) switches it (reloadModel). With
// --feedback, "wrong? pick the label" saves the largest face's correction (correct.js).
//
// Each processed frame records a User Timing measure 'fer-frame' from the camera frame's capture to its
// drawn labels (performance.getEntriesByName('fer-frame')), with detail {workerMs, faces, full, classified,
// classifyEvery, backend, threads, display}. `view.shown` is what the stage shows now: {tracks, display, at}. The
// root element gets a 'fer-faces' event per processed frame: detail {faces (recognize.js's Face, with faceId and
// misses), captureTime, width, height}.

import { Box } from './box.js';
import { cameraError, cameraUnavailable, closeCamera, onFrames, openCamera } from './camera.js';
import { absoluteUrls } from './config.js';
import { CorrectionControl } from './correct.js';
import { drawProbabilities, drawTimeline, drawTracks } from './draw.js';
import { buildLiveView } from './markup.js';
import { faceOf } from './recognize.js';
import { hasWebAssembly } from './runtime.js';
import { EmotionTimeline } from './timeline.js';

export const DEVICE = 'this device', SERVER = 'the server';

/** Start the live view in `root` (its elements are added unless there: markup.js). @param {HTMLElement} root
 * @param {import('./recognize.js').LiveConfig & {modelBytes: number, timeline: {windowS: number, refreshS: number},
 *   colours: Object<string, string>}} config @returns {LiveView} */
export function start(root, config) {
  buildLiveView(root, config);
  const view = new LiveView(root, config);
  view.init();
  window.ferLive = view;  // for tests and the console
  return view;
}

/** A module worker running `url`; from another origin (a page using the modules of a site elsewhere, which must
 * allow it: CORS), through a same-origin stub that imports it. @param {URL} url @returns {Worker} */
function startWorker(url) {
  if (url.origin === location.origin) return new Worker(url, { type: 'module' });
  const stub = new Blob([`import ${JSON.stringify(url.href)};`], { type: 'text/javascript' });
  return new Worker(URL.createObjectURL(stub), { type: 'module' });
}

/** Absolute URLs for the worker (its own base is its script's URL). */
function absolute(config) {
  return absoluteUrls(config, document.baseURI);
}

/** One live view: its elements, its worker, the camera. */
export class LiveView {
  constructor(root, config) {
    this.root = root;
    this.config = config;
    const q = (s) => root.querySelector(s);
    this.ui = { start: q('.fer-start'), facing: q('.fer-facing'), video: q('video'), overlay: q('.fer-overlay'),
      status: q('.fer-status'), probs: q('.fer-probs'), plot: q('.fer-timeline'), content: q('.fer-content'),
      model: q('.fer-model-name') };
    this.modelName = config.modelName;  // the model the worker runs (or will load on Start)
    this.requests = new Map();  // rid → {resolve, reject}: the worker's answers to 'model' and 'crop'
    this.nextRid = 0;
    const correct = q('.fer-correct');
    this.correction = correct && config.feedback ? new CorrectionControl(correct, this, config) : null;
    this.timeline = new EmotionTimeline(config.timeline);
    this.worker = null;
    this.ready = null;
    this.backend = '';
    this.threads = 1;
    this.display = config.display || 'computed';  // 'computed': each frame with its own boxes; 'latest': see above
    this.shown = null;    // what the stage shows: {tracks, display, at}
    this.running = false;
    this.stopFrames = null;
    this.latest = null;   // the newest camera frame: {seq, captureTime}
    this.sentSeq = 0;
    this.seq = 0;
    this.busy = false;
    this.nextId = 0;
    this.captures = new Map();
    this.recent = [];     // [time, latency ms] of the last processed frames, for the status line
    this.fetched = [];    // [URL, bytes] the worker downloaded (runtime, models)
  }

  /** The app's switch between this device and the server, or null (the static site, <fer-camera>). */
  get switch() { return document.querySelector('#where'); }

  init() {
    this.switch?.addEventListener('change', () => this.onWhere(this.where()));
    this.ui.start.addEventListener('click', () => (this.running ? this.stop() : this.run()));
    this.ui.facing.addEventListener('change', () => this.running && this.run());
    if (!hasWebAssembly()) {
      this.fallBack(this.switch ? 'This browser cannot run WebAssembly, so frames are sent to the server and processed there.'
        : 'This browser cannot run WebAssembly with SIMD, which the live view needs; try a current Chrome, Edge, Firefox or Safari.');
      return;
    }
    this.ui.start.disabled = false;
    this.root.dataset.ready = 'true';
    const problem = cameraUnavailable();
    this.say(problem || `Frames are processed on this device and never leave it. Press Start to load the model`
      + `${this.modelSize()}, once, and open the camera.`);
    this.onWhere(this.where());
  }

  /** The switch's value: 'this device' or 'the server'. */
  where() {
    return document.querySelector('#where input:checked')?.value || DEVICE;
  }

  onWhere(where) {
    const here = where === DEVICE;
    this.ui.content.hidden = !here;
    if (!here) {
      this.stop();
      this.say('Frames are sent to the server and processed there (below). Switch to "this device" to keep them here.');
    } else if (!this.running) {
      this.say(cameraUnavailable() || 'Frames are processed on this device and never leave it. Press Start.');
    }
  }

  /** Move processing to the server: set the switch, which shows the server's stream. */
  fallBack(reason) {
    this.stop();
    const server = document.querySelector(`#where input[value="${SERVER}"]`);
    if (server && !server.checked) server.click();
    this.ui.content.hidden = true;
    this.say(reason);
  }

  say(text) { this.ui.status.textContent = text; }

  /** " (18.8 MB)" when the model's size is known. @returns {string} */
  modelSize() {
    return this.config.modelBytes ? ` (${(this.config.modelBytes / 1e6).toFixed(1)} MB)` : '';
  }

  /** Load the runtime and models in the worker (once). @returns {Promise<string>} the backend */
  ensureWorker() {
    if (this.ready) return this.ready;
    this.worker = startWorker(new URL('./worker.js', import.meta.url));
    this.ready = new Promise((resolve, reject) => {
      this.worker.onmessage = (e) => {
        const m = e.data;
        if (m.type === 'ready') {
          this.backend = m.backend; this.threads = m.threads; this.fetched = m.fetched; this.showModel(m.model);
          resolve(m.backend);
        } else if (m.type === 'result') this.onResult(m);
        else if (m.rid !== undefined && this.requests.has(m.rid)) this.answer(m);
        else if (m.type === 'error') this.onError(m, reject);
      };
      this.worker.onerror = (e) => reject(new Error(e.message || 'the worker could not start'));
    });
    this.worker.postMessage({ type: 'init', config: absolute(this.config) });
    return this.ready;
  }

  /** Ask the worker something ('model', 'crop'); its answer, or an Error. @param {object} message @returns {Promise<object>} */
  request(message) {
    const rid = this.nextRid++;
    return new Promise((resolve, reject) => {
      this.requests.set(rid, { resolve, reject });
      this.worker.postMessage({ ...message, rid });
    });
  }

  answer(m) {
    const { resolve, reject } = this.requests.get(m.rid);
    this.requests.delete(m.rid);
    if (m.type === 'error') reject(new Error(m.message)); else resolve(m);
  }

  /** Show which model the page runs. @param {string} name */
  showModel(name) {
    this.modelName = name;
    if (this.ui.model) this.ui.model.textContent = name;
    this.root.dataset.model = name;
  }

  /** Run the model the app serves now (its model menu switched it): the worker loads fer-live/model.onnx again
   * when its name changed; before Start, the name is shown and Start loads it. Returns the model's name.
   * @returns {Promise<string>} */
  async reloadModel() {
    if (!this.config.modelInfoUrl) return this.modelName;  // a static site: its model is fixed
    let info;
    try {
      const response = await fetch(new URL(this.config.modelInfoUrl, document.baseURI).href, { cache: 'no-store' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      info = await response.json();
    } catch (e) {
      console.warn(`fer: could not ask which model is live (${e})`);
      return this.modelName;
    }
    if (!this.backend) {  // no worker yet: Start loads the live model
      this.config.modelBytes = info.bytes;
      this.showModel(info.name);
      return info.name;
    }
    if (info.name === this.modelName) return info.name;
    this.say(`Loading the model ${info.name} (${(info.bytes / 1e6).toFixed(1)} MB)…`);
    try {
      const m = await this.request({ type: 'model', url: absolute(this.config).modelUrl });
      this.showModel(m.name);
      this.say(`Now running ${m.name} on this device.`);
    } catch (e) {
      this.say(`The model ${info.name} could not run in this browser (${e?.message || e}); still running ${this.modelName}.`);
    }
    return this.modelName;
  }

  /** The classifier's input for the largest face of the latest frame with a face and the probabilities shown
   * for it, or null (no face yet, or the camera is off). @returns {Promise<{face: Uint8Array, probs: number[]}|null>} */
  async largestFace() {
    if (!this.running || !this.worker) return null;
    const m = await this.request({ type: 'crop' });
    return m.face ? { face: m.face, probs: m.probs } : null;
  }

  async run() {
    this.ui.start.disabled = true;
    try {
      if (!this.backend) this.say(`Loading the model${this.modelSize()} and the runtime…`);
      try {
        await this.ensureWorker();
        await this.reloadModel();  // switched by another viewer's menu since this page loaded
      } catch (e) {
        this.fallBack(`The model could not run in this browser (${e?.message || e})`
          + (this.switch ? '; frames go to the server.' : '.'));
        return;
      }
      this.stopFrames?.();
      try {
        await openCamera(this.ui.video, this.ui.facing.value);
      } catch (e) {
        this.stop();
        this.say(cameraError(e));
        return;
      }
      this.worker.postMessage({ type: 'reset' });
      this.running = true;
      this.ui.start.textContent = 'Stop';
      this.correction?.update();
      this.say(`Processing on this device (${this.backend === 'webgpu' ? 'WebGPU' : 'WebAssembly'}); frames never leave it.`);
      this.stopFrames = onFrames(this.ui.video, (captureTime) => this.onCameraFrame(captureTime));
    } finally {
      this.ui.start.disabled = false;
    }
  }

  stop() {
    this.stopFrames?.();
    this.stopFrames = null;
    closeCamera(this.ui.video);
    this.running = false;
    this.latest = null;
    this.ui.start.textContent = 'Start';
    this.correction?.update();
  }

  onCameraFrame(captureTime) {
    this.latest = { seq: ++this.seq, captureTime };
    if (!this.busy) this.send();
  }

  /** Hand the newest camera frame to the worker (one frame in flight; frames that arrive meanwhile are skipped). */
  async send() {
    const frame = this.latest;
    if (!frame || frame.seq === this.sentSeq || !this.running) return;
    this.busy = true;
    this.sentSeq = frame.seq;
    let bitmap;
    try {
      bitmap = await createImageBitmap(this.ui.video);
    } catch {
      this.busy = false;  // no picture yet
      return;
    }
    const id = this.nextId++;
    this.captures.set(id, frame.captureTime);
    this.worker.postMessage({ type: 'frame', id, bitmap }, [bitmap]);
  }

  onResult(m) {
    const captureTime = this.captures.get(m.id);
    this.captures.delete(m.id);
    this.busy = false;
    if (!this.running) { m.bitmap?.close(); return; }
    const { classes, colours } = this.config;
    const rule = this.config.notSure;
    const computed = this.display === 'computed';
    // on the frame they were computed for: where the face is on it (Track.shown); over the live video: as before
    const tracks = computed ? m.tracks.map((t) => ({ ...t, box: t.shown })) : m.tracks;
    const drawn = drawTracks(this.ui.overlay, tracks, classes, colours, m.width, m.height,
      { frame: computed ? m.bitmap : null, fade: computed, rule });
    m.bitmap?.close();
    this.shown = { tracks: drawn, display: this.display, at: performance.now() };
    const main = m.tracks.reduce((b, t) => (!b || t.box.w * t.box.h > b.box.w * b.box.h ? t : b), null);
    drawProbabilities(this.ui.probs, main && main.probs, classes, colours, { quality: main && main.quality, rule });
    const end = performance.now();
    performance.measure('fer-frame', { start: captureTime, end,
      detail: { workerMs: m.ms, faces: m.tracks.length, full: m.full, classified: m.classified,
        classifyEvery: m.classifyEvery, backend: this.backend, threads: this.threads, display: this.display } });
    this.timeline.add(main && main.probs, end / 1000);
    this.status(end, end - captureTime);
    this.root.dispatchEvent(new CustomEvent('fer-faces', { detail: {
      faces: tracks.map((t) => ({ ...faceOf(Box.from(t.box), t.probs, classes, t.id + 1, { quality: t.quality, rule }),
        misses: t.misses })),
      captureTime, width: m.width, height: m.height } }));
    if (this.timeline.due(end / 1000)) {
      drawTimeline(this.ui.plot, this.timeline.points, classes, colours, this.timeline.windowS, end / 1000);
    }
    this.send();
  }

  /** Every face of a photo, found and classified in the worker (nothing leaves the page): the photo's bitmap
   * back (to draw) with its faces ({@link import('./recognize.js').Face}, boxes as plain objects).
   * @param {Blob|ImageBitmap} photo
   * @returns {Promise<{bitmap: ImageBitmap, width: number, height: number, faces: object[]}>} */
  async analyzePhoto(photo) {
    await this.ensureWorker();
    const bitmap = photo instanceof ImageBitmap ? photo : await createImageBitmap(photo, { imageOrientation: 'from-image' });
    const rid = this.nextRid++;
    return new Promise((resolve, reject) => {
      this.requests.set(rid, { resolve, reject });
      this.worker.postMessage({ type: 'photo', rid, bitmap }, [bitmap]);
    });
  }

  /** Settings for measuring (benchmarks/web_speed.py): classify tracked faces on every n-th frame (a number: fixed;
   * 'budget': following the frame budget, the default) and stable ones on every n-th.
   * @param {{classifyEvery?: number|'budget', stableEvery?: number}} options */
  setOptions(options) {
    this.worker?.postMessage({ type: 'options', ...options });
  }

  /** Stop the camera and the worker (the element left the page). */
  close() {
    this.stop();
    this.worker?.terminate();
    this.worker = null;
    this.ready = null;
    this.backend = '';
  }

  status(now, latency) {
    this.recent.push([now, latency]);
    while (this.recent.length && this.recent[0][0] < now - 1000) this.recent.shift();
    if (now - (this.lastStatus || 0) > 1000) {
      this.lastStatus = now;
      const sorted = this.recent.map((r) => r[1]).sort((a, b) => a - b);
      this.say(`Processing on this device (${this.backend === 'webgpu' ? 'WebGPU' : 'WebAssembly'}): `
        + `${this.recent.length} frames/s, ${Math.round(sorted[sorted.length >> 1])} ms from camera to labels. `
        + 'Frames never leave this device.');
    }
  }

  onError(m, reject) {
    if (m.id === undefined) { reject(new Error(m.message)); return; }
    this.busy = false;
    console.error(`fer: frame ${m.id}: ${m.message}`);
    this.captures.delete(m.id);
    this.send();
  }
}
