// Drawing what the Webcam tab shows: each tracked face's box and label over the camera picture (as
// fer/draw.py: colour per class, line width and text size following the box), the largest face's
// probabilities, and its expressions over the last seconds.

/** @typedef {{id: number, box: {x: number, y: number, w: number, h: number}, probs: number[], misses?: number}} TrackView */

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

/** Boxes and `label NN%` for every track on a canvas the size of the camera frame: over `frame` (the picture
 * the boxes were computed for) when given, else on a transparent canvas laid over the video; with `fade`, stale
 * tracks fade ({@link staleAlpha}).
 * @param {HTMLCanvasElement} canvas @param {TrackView[]} tracks @param {string[]} classes
 * @param {Object<string, string>} colours class → CSS colour @param {number} width @param {number} height
 * @param {{frame?: CanvasImageSource, fade?: boolean}} [options] @returns {TrackView[]} the tracks drawn */
export function drawTracks(canvas, tracks, classes, colours, width, height, { frame = null, fade = false } = {}) {
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const ctx = canvas.getContext('2d');
  if (frame) ctx.drawImage(frame, 0, 0, width, height); else ctx.clearRect(0, 0, width, height);
  const thickness = Math.max(2, Math.round(Math.min(width, height) / 240));
  const drawn = [];
  for (const track of tracks) {
    const alpha = fade ? staleAlpha(track.misses || 0) : 1;
    if (alpha <= 0) continue;
    ctx.globalAlpha = alpha;
    drawLabelledBox(ctx, track.box, best(track.probs, classes), colours, thickness);
    drawn.push(track);
  }
  ctx.globalAlpha = 1;
  return drawn;
}

function drawLabelledBox(ctx, { x, y, w, h }, { label, confidence }, colours, thickness) {
  const colour = colours[label] || '#ffffff';
  ctx.lineWidth = thickness;
  ctx.strokeStyle = colour;
  ctx.strokeRect(x, y, w, h);
  const text = `${label} ${Math.round(confidence * 100)}%`;
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

/** The largest face's probabilities as bars, best first (like the server view's label panel).
 * @param {HTMLElement} panel @param {number[]|null} probs @param {string[]} classes @param {Object<string, string>} colours
 * @param {{none?: string, title?: string}} [text] what to say without a face; a title before the label ("face 1: ") */
export function drawProbabilities(panel, probs, classes, colours, { none = 'No face in view.', title = '' } = {}) {
  if (!probs) {
    panel.replaceChildren(Object.assign(document.createElement('p'), { className: 'fer-none', textContent: none }));
    return;
  }
  const order = classes.map((c, i) => [c, probs[i]]).sort((a, b) => b[1] - a[1]);
  const head = Object.assign(document.createElement('h3'), { className: 'fer-label', textContent: order[0][0] });
  if (title) head.prepend(Object.assign(document.createElement('span'), { className: 'fer-face', textContent: title }));
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
  panel.replaceChildren(head, ...rows);
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
