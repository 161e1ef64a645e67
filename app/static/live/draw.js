// Drawing what the Webcam tab shows: each tracked face's box and label over the camera picture (as
// fer/draw.py: colour per class, line width and text size following the box; "?" for a face the app's rule
// calls not sure), the largest face's probabilities and quality, and its expressions over the last seconds.

import { isUncertain } from './quality.js';

/** What a not-sure face shows instead of its label (fer.serving.draw.NOT_SURE). */
export const NOT_SURE = '?';

/** @typedef {{id: number, box: {x: number, y: number, w: number, h: number}, probs: number[],
 *             quality?: import('./quality.js').FaceQuality|null}} TrackView */

/** The best class of a face. @param {number[]} probs @param {string[]} classes @returns {{label: string, confidence: number}} */
export function best(probs, classes) {
  let k = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i] > probs[k]) k = i;
  return { label: classes[k], confidence: probs[k] };
}

/** Boxes and `label NN%` (`?` when `rule` calls the face not sure) for every track on a transparent canvas the
 * size of the camera frame.
 * @param {HTMLCanvasElement} canvas @param {TrackView[]} tracks @param {string[]} classes
 * @param {Object<string, string>} colours class → CSS colour @param {number} width @param {number} height
 * @param {import('./quality.js').NotSureRule} [rule] */
export function drawTracks(canvas, tracks, classes, colours, width, height, rule) {
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, width, height);
  const thickness = Math.max(2, Math.round(Math.min(width, height) / 240));
  for (const track of tracks) {
    const { x, y, w, h } = track.box;
    const { label, confidence } = best(track.probs, classes);
    const unsure = isUncertain(confidence, track.quality, rule);
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
}

/** The largest face's probabilities as bars, best first (like the server view's label panel), under its label
 * (`? not sure` when `rule` calls it so) and its quality.
 * @param {HTMLElement} panel @param {number[]|null} probs @param {string[]} classes @param {Object<string, string>} colours
 * @param {import('./quality.js').FaceQuality|null} [quality] @param {import('./quality.js').NotSureRule} [rule] */
export function drawProbabilities(panel, probs, classes, colours, quality = null, rule = undefined) {
  if (!probs) {
    panel.replaceChildren(Object.assign(document.createElement('p'), { className: 'fer-none', textContent: 'No face in view.' }));
    return;
  }
  const order = classes.map((c, i) => [c, probs[i]]).sort((a, b) => b[1] - a[1]);
  const unsure = isUncertain(order[0][1], quality, rule);
  const head = Object.assign(document.createElement('h3'), { className: 'fer-label',
    textContent: unsure ? `${NOT_SURE} not sure (${order[0][0]}?)` : order[0][0] });
  head.dataset.uncertain = String(unsure);
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
