// Drawing what the live view (the Webcam tab, the static site, <fer-camera>) and the photo panel show: each face's
// box and label over the picture it was computed for (as fer/draw.py: colour per class, line width and text size
// following the box; "?" in white for a face the app's rule calls not sure), the largest face's probabilities and
// quality, and its expressions over the last seconds.

import { isUncertain } from './quality.js';

/** What a not-sure face shows instead of its label (fer.serving.draw.NOT_SURE). */
export const NOT_SURE = '?';

/** @typedef {{id: number, box: {x: number, y: number, w: number, h: number}, probs: number[], misses?: number,
 *             quality?: import('./quality.js').FaceQuality|null}} TrackView */

/** The best class of a face. @param {number[]} probs @param {string[]} classes @returns {{label: string, confidence: number}} */
export function best(probs, classes) {
  let k = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i] > probs[k]) k = i;
  return { label: classes[k], confidence: probs[k] };
}

/** How opaque a track's box is drawn when its face was not found on the last `misses` frames: a stale box fades
 * at once and is gone on the second miss (the tracker keeps it a little longer, to pick the face up again).
 * @param {number} misses @returns {number} */
export function staleAlpha(misses) {
  return misses <= 0 ? 1 : misses === 1 ? 0.4 : 0;
}

/** Boxes and `label NN%` (`?` in white when `rule` calls the face not sure, from its confidence and its
 * `quality`) for every track on a canvas the size of the camera frame: over `frame` (the picture the boxes were
 * computed for) when given, else on a transparent canvas laid over the video; with `fade`, stale tracks fade
 * ({@link staleAlpha}).
 * @param {HTMLCanvasElement} canvas @param {TrackView[]} tracks @param {string[]} classes
 * @param {Object<string, string>} colours class → CSS colour @param {number} width @param {number} height
 * @param {{frame?: CanvasImageSource, fade?: boolean, rule?: import('./quality.js').NotSureRule}} [options]
 * @returns {TrackView[]} the tracks drawn */
export function drawTracks(canvas, tracks, classes, colours, width, height,
  { frame = null, fade = false, rule = undefined } = {}) {
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const ctx = canvas.getContext('2d');
  if (frame) ctx.drawImage(frame, 0, 0, width, height); else ctx.clearRect(0, 0, width, height);
  const thickness = Math.max(2, Math.round(Math.min(width, height) / 240));
  const drawn = [];
  for (const track of tracks) {
    const alpha = fade ? staleAlpha(track.misses || 0) : 1;
    if (alpha <= 0) continue;
    ctx.globalAlpha = alpha;
    const { label, confidence } = best(track.probs, classes);
    drawLabelledBox(ctx, track.box, { label, confidence, unsure: isUncertain(confidence, track.quality, rule) },
      colours, thickness);
    drawn.push(track);
  }
  ctx.globalAlpha = 1;
  return drawn;
}

/** One box and its label (`?` in white for a not-sure face) as fer/draw.py draws it. */
function drawLabelledBox(ctx, { x, y, w, h }, { label, confidence, unsure = false }, colours, thickness) {
  const colour = unsure ? '#ffffff' : colours[label] || '#ffffff';
  ctx.lineWidth = thickness;
  ctx.strokeStyle = colour;
  ctx.strokeRect(x, y, w, h);
  const text = unsure ? NOT_SURE : `${label} ${Math.round(confidence * 100)}%`;
  const px = Math.round(30 * Math.max(0.5, w / 200));
  ctx.font = `bold ${px}px sans-serif`;
  const tw = ctx.measureText(text).width, th = px;
  const top = y - th - 6 >= 0 ? y - th - 6 : y + h;
  ctx.fillStyle = colour;
  ctx.fillRect(x, top, tw + 8, th + 6);
  ctx.fillStyle = '#000000';
  ctx.textBaseline = 'top';
  ctx.fillText(text, x + 4, top + 3);
}

/** The largest face's probabilities as bars, best first (like the server view's label panel), under its label
 * (`? not sure` when `rule` calls it so) and its quality.
 * @param {HTMLElement} panel @param {number[]|null} probs @param {string[]} classes @param {Object<string, string>} colours
 * @param {{none?: string, title?: string, quality?: import('./quality.js').FaceQuality|null,
 *          rule?: import('./quality.js').NotSureRule}} [options] what to say without a face; a title before the
 *   label ("face 1: "); the face's quality and the "not sure" rule */
export function drawProbabilities(panel, probs, classes, colours,
  { none = 'No face in view.', title = '', quality = null, rule = undefined } = {}) {
  if (!probs) {
    panel.replaceChildren(Object.assign(document.createElement('p'), { className: 'fer-none', textContent: none }));
    return;
  }
  const order = classes.map((c, i) => [c, probs[i]]).sort((a, b) => b[1] - a[1]);
  const unsure = isUncertain(order[0][1], quality, rule);
  const head = Object.assign(document.createElement('h3'), { className: 'fer-label',
    textContent: unsure ? `${NOT_SURE} not sure (${order[0][0]}?)` : order[0][0] });
  head.dataset.uncertain = String(unsure);
  if (title) head.prepend(Object.assign(document.createElement('span'), { className: 'fer-face', textContent: title }));
  const seen = quality ? Object.assign(document.createElement('p'), { className: 'fer-quality',
    textContent: `face quality: ${quality.band} (${quality.quality.toFixed(2)}`
      + `${quality.limit ? `; limited by ${quality.limit}` : ''})` }) : null;
  if (seen) seen.dataset.band = quality.band;
  const rows = order.map(([c, p]) => {
    const row = document.createElement('div');
    row.className = 'fer-row';
    row.dataset.class = c;
    const bar = document.createElement('span');
    bar.className = 'fer-fill';
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    bar.style.background = colours[c] || '#999';
    row.append(Object.assign(document.createElement('span'), { className: 'fer-name', textContent: c }),
      Object.assign(document.createElement('span'), { className: 'fer-track' }),
      Object.assign(document.createElement('span'), { className: 'fer-pct', textContent: `${Math.round(100 * p)}%` }));
    row.children[1].append(bar);
    return row;
  });
  panel.replaceChildren(head, ...(seen ? [seen] : []), ...rows);
}

/** The timeline: one line per class, probability (0–1) against seconds ago (−window … 0).
 * @param {HTMLCanvasElement} canvas @param {{t: number, probs: number[]}[]} points @param {string[]} classes
 * @param {Object<string, string>} colours @param {number} windowS @param {number} now seconds */
export function drawTimeline(canvas, points, classes, colours, windowS, now) {
  const width = canvas.clientWidth || 480, height = canvas.clientHeight || 200;
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const ctx = canvas.getContext('2d');
  const left = 34, bottom = 22, plotW = width - left - 90, plotH = height - bottom - 8;
  ctx.clearRect(0, 0, width, height);
  ctx.font = '11px sans-serif';
  ctx.fillStyle = '#888'; ctx.strokeStyle = '#ccc'; ctx.lineWidth = 1;
  ctx.strokeRect(left, 8, plotW, plotH);
  for (const v of [0, 0.5, 1]) ctx.fillText(v.toFixed(1), 4, 8 + plotH * (1 - v) + 4);
  for (let s = 0; s <= windowS; s += 10) ctx.fillText(`-${windowS - s}`, left + (plotW * s) / windowS - 8, height - 6);
  ctx.fillText(`seconds ago (last ${windowS} s)`, left + plotW / 2 - 50, height - 6);
  const x = (t) => left + plotW * (1 - (now - t) / windowS), y = (p) => 8 + plotH * (1 - p);
  classes.forEach((c, k) => {
    ctx.strokeStyle = colours[c] || '#999'; ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach((pt, i) => (i ? ctx.lineTo(x(pt.t), y(pt.probs[k])) : ctx.moveTo(x(pt.t), y(pt.probs[k]))));
    ctx.stroke();
    ctx.fillStyle = colours[c] || '#999';
    ctx.fillRect(left + plotW + 10, 10 + k * 15, 10, 10);
    ctx.fillStyle = '#666';
    ctx.fillText(c, left + plotW + 24, 19 + k * 15);
  });
}
