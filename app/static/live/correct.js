// "Wrong? pick the label" for the live view's largest face (only when the app runs with --feedback DIR): the
// classifier's input (the 48×48 grey crop the worker builds for the model), the chosen label, what the model
// said and which model said it go to the app (POST fer-live/correct), which saves them with
// fer.feedback.save_correction as source "live". Nothing is sent until the user presses Save.

/** Bytes as base64 (what the app's correction endpoint takes for the face). @param {Uint8Array} bytes
 * @returns {string} */
export function toBase64(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x2000) text += String.fromCharCode(...bytes.subarray(i, i + 0x2000));
  return btoa(text);
}

/** The JSON a correction sends (fer.feedback.parse_correction): the face, the chosen label, the model's most
 * probable class, its probabilities in class order and the model's name.
 * @param {Uint8Array} face 48×48 grey, row-major @param {number[]} probs @param {string[]} classes
 * @param {string} label @param {string} model @returns {{face: string, label: string, predicted: string,
 *   probs: number[], model: string}} */
export function correctionPayload(face, probs, classes, label, model) {
  let k = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i] > probs[k]) k = i;
  return { face: toBase64(face), label, predicted: classes[k], probs: Array.from(probs), model };
}

/** Send a correction to the app; its answer ({message, summary, file}), or an Error with the app's reason.
 * @param {string} url @param {object} payload @returns {Promise<{message: string, summary: string, file: string}>} */
export async function sendCorrection(url, payload) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

/** The controls in the live view (.fer-correct: a label menu, a Save button, a status line), wired to a view
 * that can hand over its largest face (`largestFace()`) and the model it runs (`modelName`). */
export class CorrectionControl {
  /**
   * @param {HTMLElement} element the .fer-correct element
   * @param {{largestFace: () => Promise<{face: Uint8Array, probs: number[]}|null>, modelName: string,
   *          running: boolean}} view
   * @param {{correctUrl: string, classes: string[]}} config
   */
  constructor(element, view, config) {
    this.view = view; this.config = config;
    this.label = element.querySelector('.fer-correct-label');
    this.button = element.querySelector('.fer-correct-save');
    this.status = element.querySelector('.fer-correct-status');
    this.label.addEventListener('change', () => this.update());
    this.button.addEventListener('click', () => this.save());
  }

  /** Enable Save when a label is picked and the camera runs. */
  update() { this.button.disabled = !this.label.value || !this.view.running; }

  /** Save the largest face under the picked label; the status line says what happened. */
  async save() {
    const label = this.label.value;
    if (!label) { this.status.textContent = 'Pick the right expression first.'; return; }
    this.button.disabled = true;
    try {
      const found = await this.view.largestFace();
      if (!found) { this.status.textContent = 'No face in view: nothing to correct.'; return; }
      const answer = await sendCorrection(new URL(this.config.correctUrl, document.baseURI).href,
        correctionPayload(found.face, found.probs, this.config.classes, label, this.view.modelName));
      this.status.textContent = answer.message;
      document.querySelector('#feedback-refresh')?.click();  // the panel counts the corrections again
    } catch (e) {
      this.status.textContent = `Not saved: ${e?.message || e}.`;
    } finally {
      this.update();
    }
  }
}
