// The pixels of whatever a page holds a picture in: an <img>, a <video> (its current frame), a <canvas>, an
// ImageBitmap, a VideoFrame, an ImageData or an image file (Blob). Transparent pixels are laid on white, as
// fer.core.images.load_image does for photos. Works in a worker too (OffscreenCanvas).

import { fromImageData } from './images.js';

/** @typedef {import('./images.js').Image} Image */
/** @typedef {ImageBitmap|ImageData|HTMLImageElement|HTMLVideoElement|HTMLCanvasElement|OffscreenCanvas|VideoFrame|Blob}
 *   ImageSource */

let canvas = null, context = null;

/** The width and height of a drawable source. @param {any} source @returns {[number, number]} */
export function sourceSize(source) {
  if (typeof HTMLVideoElement !== 'undefined' && source instanceof HTMLVideoElement) {
    return [source.videoWidth, source.videoHeight];
  }
  if (typeof HTMLImageElement !== 'undefined' && source instanceof HTMLImageElement) {
    return [source.naturalWidth, source.naturalHeight];
  }
  if (typeof VideoFrame !== 'undefined' && source instanceof VideoFrame) return [source.displayWidth, source.displayHeight];
  return [source.width, source.height];
}

/** Draw `source` on a reusable canvas of its size and read its pixels (RGBA). @param {CanvasImageSource} source
 * @param {boolean} [onWhite] lay transparent pixels on white first (photos) @returns {Image} */
export function pixelsOf(source, onWhite = false) {
  const [width, height] = sourceSize(source);
  if (!width || !height) throw new Error('the picture has no pixels yet (a video that has not started, an image not loaded)');
  if (!canvas || canvas.width !== width || canvas.height !== height) {
    canvas = new OffscreenCanvas(width, height);
    context = canvas.getContext('2d', { willReadFrequently: true });
  }
  if (onWhite) {
    context.fillStyle = '#ffffff';
    context.fillRect(0, 0, width, height);
  } else {
    context.clearRect(0, 0, width, height);
  }
  context.drawImage(source, 0, 0);
  return fromImageData(context.getImageData(0, 0, width, height));
}

/** Any {@link ImageSource} as an {@link Image} (RGBA). A Blob is decoded first (its EXIF rotation applied).
 * @param {ImageSource|Image} source @param {{onWhite?: boolean}} [options] @returns {Promise<Image>} */
export async function toImage(source, { onWhite = true } = {}) {
  if (source && source.data && source.channels) return source;  // already pixels
  if (typeof ImageData !== 'undefined' && source instanceof ImageData) return fromImageData(source);
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    const bitmap = await createImageBitmap(source, { imageOrientation: 'from-image' });
    try {
      return pixelsOf(bitmap, onWhite);
    } finally {
      bitmap.close();
    }
  }
  return pixelsOf(source, onWhite);
}
