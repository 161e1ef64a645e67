// Pixels as the Python path computes them with OpenCV: grey conversion (cv2.COLOR_RGB2GRAY), INTER_AREA and
// INTER_LINEAR resizing of uint8 images, and fer.images.resize_to_width. The same arithmetic as OpenCV's
// code (fixed-point grey, float32 area sums rounded half to even), so the page's faces are Python's faces.

import { pyRound } from './box.js';

/**
 * An interleaved uint8 image: RGBA (an ImageData), RGB or grey.
 * @typedef {{width: number, height: number, channels: number, data: Uint8Array|Uint8ClampedArray}} Image
 */

const f32 = Math.fround;
const DBL_EPSILON = 2.220446049250313e-16;

/** An ImageData (RGBA) as an {@link Image}. @param {ImageData} imageData @returns {Image} */
export function fromImageData(imageData) {
  return { width: imageData.width, height: imageData.height, channels: 4, data: imageData.data };
}

/** The pixels inside x, y, w, h (a copy; the region must lie inside the image).
 * @param {Image} image @param {number} x @param {number} y @param {number} w @param {number} h @returns {Image} */
export function region(image, x, y, w, h) {
  const cn = image.channels, out = new Uint8Array(w * h * cn);
  for (let r = 0; r < h; r++) {
    const start = ((y + r) * image.width + x) * cn;
    out.set(image.data.subarray(start, start + w * cn), r * w * cn);
  }
  return { width: w, height: h, channels: cn, data: out };
}

/** RGB(A) → grey with OpenCV's fixed-point weights ((9798 R + 19235 G + 3735 B + 2^14) >> 15), as
 * fer.images.to_grey; grey images come back as they are. @param {Image} image @returns {Image} */
export function toGrey(image) {
  if (image.channels === 1) return image;
  const n = image.width * image.height, cn = image.channels, src = image.data, out = new Uint8Array(n);
  for (let i = 0, j = 0; i < n; i++, j += cn) {
    out[i] = (src[j] * 9798 + src[j + 1] * 19235 + src[j + 2] * 3735 + 16384) >> 15;
  }
  return { width: image.width, height: image.height, channels: 1, data: out };
}

/** cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA): shrinking averages areas (OpenCV's
 * fast path for whole-number factors, its weight tables otherwise); enlarging is OpenCV's area-mode linear.
 * @param {Image} image @param {number} width @param {number} height @returns {Image} */
export function resizeArea(image, width, height) {
  if (width === image.width && height === image.height) return { ...image, data: image.data.slice() };
  const scaleX = 1 / (width / image.width), scaleY = 1 / (height / image.height);
  if (scaleX < 1 || scaleY < 1) return resizeLinear(image, width, height, true);
  const ix = pyRound(scaleX), iy = pyRound(scaleY);
  if (Math.abs(scaleX - ix) < DBL_EPSILON && Math.abs(scaleY - iy) < DBL_EPSILON) {
    return areaFast(image, width, height, ix, iy);
  }
  return areaTables(image, width, height, scaleX, scaleY);
}

function areaFast(image, width, height, sx, sy) {
  const cn = image.channels, src = image.data, stride = image.width * cn;
  const out = new Uint8Array(width * height * cn);
  const pairs = sx === 2 && sy === 2 && cn !== 2;
  const scale = f32(1 / (sx * sy));
  for (let dy = 0; dy < height; dy++) {
    const row = dy * sy * stride;
    for (let dx = 0; dx < width; dx++) {
      for (let c = 0; c < cn; c++) {
        const s = row + dx * sx * cn + c;
        if (pairs) {
          out[(dy * width + dx) * cn + c] = (src[s] + src[s + cn] + src[s + stride] + src[s + stride + cn] + 2) >> 2;
        } else {
          let sum = 0;
          for (let ky = 0; ky < sy; ky++) for (let kx = 0; kx < sx; kx++) sum += src[s + ky * stride + kx * cn];
          out[(dy * width + dx) * cn + c] = saturate(f32(f32(sum) * scale));
        }
      }
    }
  }
  return { width, height, channels: cn, data: out };
}

/** OpenCV's computeResizeAreaTab: [source index, destination index, weight] triples. */
function areaTab(ssize, dsize, scale) {
  const tab = [];
  for (let dx = 0; dx < dsize; dx++) {
    const fsx1 = dx * scale, fsx2 = fsx1 + scale;
    const cellWidth = Math.min(scale, ssize - fsx1);
    let sx1 = Math.ceil(fsx1), sx2 = Math.floor(fsx2);
    sx2 = Math.min(sx2, ssize - 1);
    sx1 = Math.min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) tab.push([sx1 - 1, dx, f32((sx1 - fsx1) / cellWidth)]);
    for (let sx = sx1; sx < sx2; sx++) tab.push([sx, dx, f32(1 / cellWidth)]);
    if (fsx2 - sx2 > 1e-3) tab.push([sx2, dx, f32(Math.min(Math.min(fsx2 - sx2, 1), cellWidth) / cellWidth)]);
  }
  return tab;
}

function areaTables(image, width, height, scaleX, scaleY) {
  const cn = image.channels, src = image.data, srcStride = image.width * cn, dw = width * cn;
  const xtab = areaTab(image.width, width, scaleX), ytab = areaTab(image.height, height, scaleY);
  const out = new Uint8Array(width * height * cn);
  const buf = new Float32Array(dw), sum = new Float32Array(dw);
  let prevDy = ytab[0][1];
  for (const [sy, dy, beta] of ytab) {
    buf.fill(0);
    const row = sy * srcStride;
    for (const [sx, dx, alpha] of xtab) {
      for (let c = 0; c < cn; c++) buf[dx * cn + c] = f32(buf[dx * cn + c] + f32(src[row + sx * cn + c] * alpha));
    }
    if (dy !== prevDy) {
      for (let i = 0; i < dw; i++) { out[prevDy * dw + i] = saturate(sum[i]); sum[i] = f32(beta * buf[i]); }
      prevDy = dy;
    } else {
      for (let i = 0; i < dw; i++) sum[i] = f32(sum[i] + f32(beta * buf[i]));
    }
  }
  for (let i = 0; i < dw; i++) out[prevDy * dw + i] = saturate(sum[i]);
  return { width, height, channels: cn, data: out };
}

function saturate(v) {
  const r = pyRound(v);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/** Coefficients of OpenCV's linear resize along one axis (11-bit fixed point), area mode for enlarging INTER_AREA. */
function linearTab(ssize, dsize, areaMode) {
  const inv = dsize / ssize, scale = 1 / inv;
  const ofs = new Int32Array(dsize), alpha = new Int16Array(dsize * 2);
  for (let d = 0; d < dsize; d++) {
    let s, f;
    if (!areaMode) {
      f = f32((d + 0.5) * scale - 0.5);
      s = Math.floor(f);
      f = f32(f - s);
    } else {
      s = Math.floor(d * scale);
      f = f32((d + 1) - (s + 1) * inv);
      f = f <= 0 ? 0 : f32(f - Math.floor(f));
    }
    if (s < 0) { f = 0; s = 0; }
    if (s >= ssize - 1) { f = 0; s = ssize - 1; }
    ofs[d] = s;
    alpha[2 * d] = pyRound(f32(1 - f) * 2048);
    alpha[2 * d + 1] = pyRound(f * 2048);
  }
  return { ofs, alpha };
}

/** cv2.resize(..., interpolation=cv2.INTER_LINEAR) of a uint8 image: OpenCV's fixed-point coefficients and
 * its vectorised rounding. @param {Image} image @param {number} width @param {number} height
 * @param {boolean} [areaMode] INTER_AREA's coefficients (OpenCV enlarges with them) @returns {Image} */
export function resizeLinear(image, width, height, areaMode = false) {
  const cn = image.channels, src = image.data, sw = image.width, sh = image.height;
  const xt = linearTab(sw, width, areaMode), yt = linearTab(sh, height, areaMode);
  const rows = new Map();
  const hrow = (sy) => {  // one source row resized horizontally, values × 2048
    if (rows.has(sy)) return rows.get(sy);
    const row = new Int32Array(width * cn), base = sy * sw * cn;
    for (let dx = 0; dx < width; dx++) {
      const s = xt.ofs[dx], a0 = xt.alpha[2 * dx], a1 = xt.alpha[2 * dx + 1], s1 = Math.min(s + 1, sw - 1);
      for (let c = 0; c < cn; c++) {
        row[dx * cn + c] = s + 1 < sw ? src[base + s * cn + c] * a0 + src[base + s1 * cn + c] * a1
          : src[base + s * cn + c] * 2048;
      }
    }
    rows.set(sy, row);
    return row;
  };
  const out = new Uint8Array(width * height * cn);
  const mulhi = (a, b) => (a * b) >> 16;
  for (let dy = 0; dy < height; dy++) {
    const s = yt.ofs[dy], b0 = yt.alpha[2 * dy], b1 = yt.alpha[2 * dy + 1];
    const r0 = hrow(s), r1 = hrow(Math.min(s + 1, sh - 1));
    for (let i = 0; i < width * cn; i++) {
      const v = (mulhi(r0[i] >> 4, b0) + mulhi(r1[i] >> 4, b1) + 2) >> 2;
      out[dy * width * cn + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, channels: cn, data: out };
}

/** fer.images.resize_to_width: shrunk (never enlarged; INTER_AREA) to at most `width` pixels wide, and the
 * factor used (≤ 1). @param {Image} image @param {number} width @returns {{image: Image, factor: number}} */
export function resizeToWidth(image, width) {
  const factor = Math.min(1, width / image.width);
  if (factor >= 1) return { image, factor };
  const w = Math.max(1, pyRound(image.width * factor)), h = Math.max(1, pyRound(image.height * factor));
  return { image: resizeArea(image, w, h), factor };
}
