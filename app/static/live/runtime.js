// onnxruntime-web, served by the app itself (app/static/vendor/onnxruntime-web) or the static site: WebGPU where
// the browser has it and the build is there, else WebAssembly, on `threads` threads (default 1:
// docs/results/web_speed.md measured 1, 2 and 4; more than one needs a cross-origin-isolated page, else
// onnxruntime-web uses one).

/**
 * Where the runtime is and how to run it.
 * @typedef {{ortBase: string, webgpu: boolean, threads?: number}} RuntimeOptions
 */

// (module (func (result v128) (v128.const i32x4 0 0 0 0))): valid only where WebAssembly has SIMD
const SIMD_PROBE = Uint8Array.of(0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0,
  253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11);

/** Whether this browser can run onnxruntime-web's WebAssembly build: WebAssembly with SIMD (its only build has
 * it). Else the app's page falls back to the server and the static site says why. @returns {boolean} */
export function hasWebAssembly() {
  try {
    return typeof WebAssembly === 'object' && typeof WebAssembly.instantiate === 'function'
      && WebAssembly.validate(Uint8Array.of(0, 97, 115, 109, 1, 0, 0, 0)) && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** The WebAssembly threads onnxruntime-web can use here: `wanted`, or 1 where the page is not cross-origin
 * isolated (no SharedArrayBuffer). @param {number} [wanted] @returns {number} */
export function usableThreads(wanted = 1) {
  return wanted > 1 && globalThis.crossOriginIsolated ? wanted : 1;
}

async function webgpuAdapter() {
  try {
    return typeof navigator !== 'undefined' && navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  } catch {
    return null;
  }
}

/** Load onnxruntime-web: its WebGPU build when the browser has a WebGPU adapter, else the WebAssembly one.
 * @param {RuntimeOptions} options @returns {Promise<{ort: any, backend: string, threads: number}>} */
export async function loadRuntime(options) {
  const gpu = options.webgpu && (await webgpuAdapter());
  const ort = await import(`${options.ortBase}${gpu ? 'ort.webgpu.min.mjs' : 'ort.wasm.min.mjs'}`);
  ort.env.wasm.wasmPaths = options.ortBase;
  ort.env.wasm.numThreads = usableThreads(options.threads);
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  return { ort, backend: gpu ? 'webgpu' : 'wasm', threads: ort.env.wasm.numThreads };
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
