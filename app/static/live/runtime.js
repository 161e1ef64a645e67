// onnxruntime-web, served by the app itself (app/static/vendor/onnxruntime-web): WebGPU where the browser
// has it, else WebAssembly on one thread (two threads were slower on a 2-core machine, and they need a
// cross-origin-isolated page).

/**
 * Where the runtime and the models are (URLs the app serves).
 * @typedef {{ortBase: string, webgpu: boolean}} RuntimeOptions
 */

/** Whether this browser can run WebAssembly at all (else the page falls back to the server). @returns {boolean} */
export function hasWebAssembly() {
  try {
    return typeof WebAssembly === 'object' && typeof WebAssembly.instantiate === 'function'
      && WebAssembly.validate(Uint8Array.of(0, 97, 115, 109, 1, 0, 0, 0));
  } catch {
    return false;
  }
}

async function webgpuAdapter() {
  try {
    return typeof navigator !== 'undefined' && navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  } catch {
    return null;
  }
}

/** Load onnxruntime-web: its WebGPU build when the browser has a WebGPU adapter, else the WebAssembly one.
 * @param {RuntimeOptions} options @returns {Promise<{ort: any, backend: string}>} */
export async function loadRuntime(options) {
  const gpu = options.webgpu && (await webgpuAdapter());
  const ort = await import(`${options.ortBase}${gpu ? 'ort.webgpu.min.mjs' : 'ort.wasm.min.mjs'}`);
  ort.env.wasm.wasmPaths = options.ortBase;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  return { ort, backend: gpu ? 'webgpu' : 'wasm' };
}

/** An inference session for a model's bytes on `backend`, falling back to WebAssembly when it fails there.
 * @param {any} ort @param {ArrayBuffer} model @param {string} backend
 * @returns {Promise<{session: any, backend: string}>} */
export async function createSession(ort, model, backend) {
  const options = { graphOptimizationLevel: 'all' };
  if (backend === 'webgpu') {
    try {
      return { session: await ort.InferenceSession.create(model, { ...options, executionProviders: ['webgpu'] }), backend };
    } catch (e) {
      console.warn(`fer: WebGPU could not run the model (${e}); using WebAssembly`);
    }
  }
  return { session: await ort.InferenceSession.create(model, { ...options, executionProviders: ['wasm'] }), backend: 'wasm' };
}

/** Fetch a file the app serves, as bytes; an Error naming the URL when it fails. @param {string} url
 * @returns {Promise<ArrayBuffer>} */
export async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

/** Fetch a model the app serves: its bytes and its file's name (the X-Fer-Model header; else the URL's last
 * part). @param {string} url @returns {Promise<{bytes: ArrayBuffer, name: string}>} */
export async function fetchModel(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const name = response.headers.get('x-fer-model') || new URL(url, self.location.href).pathname.split('/').pop();
  return { bytes: await response.arrayBuffer(), name };
}
