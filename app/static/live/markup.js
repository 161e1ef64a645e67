// The live view's elements (the one place they are written): the Start button and camera menu, the stage
// (the camera's <video> under a canvas that shows each processed frame with its boxes), the largest face's
// probabilities, the correction controls (with the app's --feedback), the timeline and the status line. The
// Gradio page, the static site and <fer-camera> all get them from here (main.js's start()).

/** Text as HTML. @param {string} text @returns {string} */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** "Wrong? pick the label" for the largest face (fer_app's --feedback). @param {string[]} classes @returns {string} */
export function correctionMarkup(classes) {
  const options = classes.map((c) => `<option value="${escapeHtml(c)}">${escapeHtml(c)}</option>`).join('');
  return `<div class="fer-correct"><label>Wrong? The right expression of the largest face
<select class="fer-correct-label"><option value="">pick…</option>${options}</select></label>
<button class="fer-correct-save" type="button" disabled>Save correction</button>
<span class="fer-correct-status" role="status"></span></div>`;
}

/** The live view's content (everything but the status line).
 * @param {{modelName: string, classes: string[], feedback?: boolean}} config @returns {string} */
export function liveViewMarkup(config) {
  return `<div class="fer-content">
<div class="fer-bar"><button class="fer-start" type="button" disabled>Start</button>
<label>Camera <select class="fer-facing"><option value="user">front</option><option value="environment">back</option>
</select></label>
<span class="fer-model">Model: <b class="fer-model-name">${escapeHtml(config.modelName || '')}</b></span></div>
<div class="fer-main"><div class="fer-stage"><video muted playsinline autoplay></video><canvas class="fer-overlay">
</canvas></div><div class="fer-probs"></div></div>
${config.feedback ? correctionMarkup(config.classes) : ''}
<canvas class="fer-timeline"></canvas>
</div>`;
}

/** Give `root` the live view's elements unless it has them: the content first, then the status line (kept when
 * the page already shows one). @param {HTMLElement} root @param {object} config */
export function buildLiveView(root, config) {
  if (root.querySelector('.fer-content')) return;
  root.classList.add('fer-live');
  let status = root.querySelector('.fer-status');
  if (!status) {
    status = Object.assign(document.createElement('p'), { className: 'fer-status' });
    status.setAttribute('role', 'status');
    root.append(status);
  }
  status.insertAdjacentHTML('beforebegin', liveViewMarkup(config));
}

/** The photo panel (photo.js): a drop zone with a file picker, the photo with its faces, each face's
 * probabilities and a status line. @returns {string} */
export function photoMarkup() {
  return `<label class="fer-drop">Drop a photo here or <span class="fer-pick">pick one</span>
<input class="fer-photo-file" type="file" accept="image/*"></label>
<p class="fer-photo-status" role="status">The photo is analysed in this page; it is not uploaded anywhere.</p>
<div class="fer-main"><canvas class="fer-photo-canvas" hidden></canvas><div class="fer-photo-faces"></div></div>`;
}
