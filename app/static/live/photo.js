// Photo analysis in the page (the static site's "Photo" panel): drop or pick a photo; every face is found and
// classified in the live view's worker (the same runtime and models, nothing uploaded), drawn on the photo with
// its box and label ("?" for a face the "not sure" rule calls so), and each face's probabilities and quality listed
// left to right (as the app's Upload tab).

import { drawProbabilities, drawTracks } from './draw.js';
import { photoMarkup } from './markup.js';

/** "Found 2 faces." / "No face found." @param {number} n @returns {string} */
export function foundText(n) {
  return n ? `Found ${n} face${n === 1 ? '' : 's'}, left to right.` : 'No face found.';
}

/** The photo panel in `root`, analysing with `view` (a LiveView: its worker). @param {HTMLElement} root
 * @param {import('./main.js').LiveView} view @returns {{analyze: (photo: Blob) => Promise<object[]>}} */
export function startPhotoPanel(root, view) {
  root.classList.add('fer-photo');
  root.innerHTML = photoMarkup();
  const q = (s) => root.querySelector(s);
  const ui = { file: q('.fer-photo-file'), status: q('.fer-photo-status'), canvas: q('.fer-photo-canvas'),
    faces: q('.fer-photo-faces'), drop: q('.fer-drop') };
  const { classes, colours, notSure: rule } = view.config;

  async function analyze(photo) {
    ui.status.textContent = 'Looking for faces (in this page)…';
    try {
      const { bitmap, width, height, faces } = await view.analyzePhoto(photo);
      const tracks = faces.map((f, i) => ({ id: i, box: f.box, probs: classes.map((c) => f.probabilities[c]),
        quality: f.quality }));
      ui.canvas.hidden = false;
      drawTracks(ui.canvas, tracks, classes, colours, width, height, { frame: bitmap, rule });
      bitmap.close();
      ui.faces.replaceChildren(...tracks.map((t, i) => {
        const panel = Object.assign(document.createElement('div'), { className: 'fer-probs' });
        drawProbabilities(panel, t.probs, classes, colours, { title: `face ${i + 1}: `, quality: t.quality, rule });
        return panel;
      }));
      ui.status.textContent = foundText(faces.length);
      root.dataset.faces = String(faces.length);
      return faces;
    } catch (e) {
      ui.status.textContent = `The photo could not be analysed (${e?.message || e}).`;
      throw e;
    }
  }

  ui.file.addEventListener('change', () => ui.file.files[0] && analyze(ui.file.files[0]).catch(() => {}));
  ui.drop.addEventListener('dragover', (e) => { e.preventDefault(); ui.drop.classList.add('fer-over'); });
  ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('fer-over'));
  ui.drop.addEventListener('drop', (e) => {
    e.preventDefault();
    ui.drop.classList.remove('fer-over');
    const file = [...(e.dataTransfer?.files || [])].find((f) => f.type.startsWith('image/'));
    if (file) analyze(file).catch(() => {});
    else ui.status.textContent = 'Drop an image file (JPEG, PNG, WebP…).';
  });
  return { analyze };
}
