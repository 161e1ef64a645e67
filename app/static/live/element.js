// <fer-camera>: the whole live view in any page (camera, boxes and labels, the largest face's probabilities,
// the timeline), computed in the page. Attributes: config (URL of the settings; default the site's
// live/config.json), model and detector (URLs of other .onnx files), threads, display ('computed' or 'latest'),
// autostart (open the camera at once). Events: 'fer-ready' (detail: the LiveView) and, per processed frame,
// 'fer-faces' (detail: {faces, captureTime, width, height}; see main.js).
//
//   <script type="module" src="live/element.js"></script>
//   <fer-camera></fer-camera>

import { loadConfig, pageUrl } from './config.js';

const STYLE_URL = new URL('./live_view.css', import.meta.url).href;

/** The live view's style, once per document. */
function addStyle() {
  if (document.querySelector(`link[href="${STYLE_URL}"]`)) return;
  document.head.append(Object.assign(document.createElement('link'), { rel: 'stylesheet', href: STYLE_URL }));
}

const Element = globalThis.HTMLElement ?? class {};  // importable in a worker, where there is no DOM

/** The <fer-camera> element; `view` is its LiveView (main.js) once 'fer-ready' has fired. */
export class FerCamera extends Element {
  constructor() {
    super();
    this.view = null;
    /** @type {Promise<import('./main.js').LiveView>} resolves when the view is ready (or rejects) */
    this.ready = new Promise((resolve, reject) => { this.settle = { resolve, reject }; });
    this.ready.catch(() => {});  // reported in the element's own status line
  }

  async connectedCallback() {
    if (this.view || this.starting) return;
    this.starting = true;
    addStyle();
    try {
      const config = await loadConfig(this.getAttribute('config') || undefined);
      const attr = (name) => this.getAttribute(name);
      if (attr('model')) config.modelUrl = new URL(attr('model'), pageUrl()).href;
      if (attr('detector')) config.yunetUrl = new URL(attr('detector'), pageUrl()).href;
      if (attr('threads')) config.threads = Number(attr('threads'));
      if (attr('display')) config.display = attr('display');
      if (attr('model')) config.modelName = new URL(config.modelUrl).pathname.split('/').pop();
      const { start } = await import('./main.js');
      this.view = start(this, config);
      this.settle.resolve(this.view);
      this.dispatchEvent(new CustomEvent('fer-ready', { detail: this.view }));
      if (this.hasAttribute('autostart')) await this.view.run();
    } catch (e) {
      this.textContent = `The live view could not start: ${e?.message || e}`;
      this.settle.reject(e);
    } finally {
      this.starting = false;
    }
  }

  disconnectedCallback() {
    this.view?.close();
  }

  /** Open the camera and start (as the Start button). @returns {Promise<void>} */
  async start() { await (await this.ready).run(); }

  /** Close the camera. */
  stop() { this.view?.stop(); }
}

if (globalThis.customElements && !customElements.get('fer-camera')) customElements.define('fer-camera', FerCamera);
