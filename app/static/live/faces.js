// The classifier's view of a face, as fer.detect.face_crop and fer.faces.to_face: the square around the
// detector's box (CropSpec: margin 0, square, no alignment), clipped to the frame, grey, 48×48 (INTER_AREA
// when shrinking, INTER_LINEAR when enlarging, chosen by the crop's height as in Python).

import { Box } from './box.js';
import { region, resizeArea, resizeLinear, toGrey } from './images.js';

/** @typedef {import('./images.js').Image} Image */

/** The face input size (fer.labels.FACE_SIZE). */
export const FACE_SIZE = 48;

/**
 * fer.detect.CropSpec: margin × box size added on every side, made square first or not. Alignment is not
 * supported here (the app's default has it off).
 * @typedef {{margin: number, square: boolean, align?: boolean}} CropSpec
 */

/** The image inside `box` grown by `margin`, clipped to the image (fer.detect.crop).
 * @param {Image} image @param {Box} box @param {number} [margin] @returns {Image} */
export function crop(image, box, margin = 0) {
  const b = box.expand(margin).clip(image.width, image.height);
  return region(image, b.x, b.y, b.w, b.h);
}

/** The face in `box` as the classifier should see it (fer.detect.face_crop without alignment).
 * @param {Image} image @param {Box} box @param {CropSpec} spec @returns {Image} */
export function faceCrop(image, box, spec) {
  if (spec.align) throw new Error('aligned crops are not supported in the page');
  const area = (spec.square ? box.square() : box).expand(spec.margin);
  return crop(image, area);
}

/** Any crop → a 48×48 grey face (fer.faces.to_face). @param {Image} image @returns {Uint8Array} */
export function toFace(image) {
  const grey = toGrey(image);
  if (grey.width === FACE_SIZE && grey.height === FACE_SIZE) return grey.data;
  const shrinking = grey.height > FACE_SIZE;
  return (shrinking ? resizeArea(grey, FACE_SIZE, FACE_SIZE) : resizeLinear(grey, FACE_SIZE, FACE_SIZE)).data;
}

/** Every box's face, stacked into the uint8 (N, 1, 48, 48) batch the model takes (fer.faces.faces_array).
 * @param {Image} image @param {Box[]} boxes @param {CropSpec} spec @returns {Uint8Array} */
export function facesArray(image, boxes, spec) {
  const out = new Uint8Array(boxes.length * FACE_SIZE * FACE_SIZE);
  boxes.forEach((box, i) => out.set(toFace(faceCrop(image, box, spec)), i * FACE_SIZE * FACE_SIZE));
  return out;
}
