// The live view's settings (recognize.js's LiveConfig): the Python path's values (fer.serving.live.live_settings)
// and where the runtime and models are. The static site has them in live/config.json (fer-web build), with URLs
// relative to that file; the app puts them in its page.

/** @typedef {import('./recognize.js').LiveConfig} LiveConfig */

/** The static site's settings file, beside these modules. */
export const CONFIG_URL = new URL('./config.json', import.meta.url).href;

const URL_FIELDS = ['ortBase', 'yunetUrl', 'modelUrl', 'modelInfoUrl', 'correctUrl'];

/** The base relative URLs are read against: the page's, or a worker's script. @returns {string} */
export function pageUrl() {
  return globalThis.document?.baseURI || globalThis.location.href;
}

/** The settings with their URLs made absolute against `base`. @param {object} config @param {string} base
 * @returns {LiveConfig} */
export function absoluteUrls(config, base) {
  const out = { ...config };
  for (const field of URL_FIELDS) if (out[field]) out[field] = new URL(out[field], base).href;
  return out;
}

/** The settings: an object as it is (its URLs read against the page), else fetched from a URL (default: the
 * site's live/config.json; its URLs read against the file's). @param {string|URL|object} [source]
 * @returns {Promise<LiveConfig>} */
export async function loadConfig(source = CONFIG_URL) {
  if (source && typeof source === 'object' && !(source instanceof URL)) return absoluteUrls(source, pageUrl());
  const url = new URL(source, pageUrl()).href;
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`the live view's settings could not be fetched from ${url} (${e?.message || e})`);
  }
  if (!response.ok) {
    throw new Error(`the live view's settings are not at ${url} (HTTP ${response.status}): fer-web build writes them`);
  }
  return absoluteUrls(await response.json(), url);
}
