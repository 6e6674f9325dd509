// Training pairs as pixels: mask binarisation and the original protocol's resize (cv2 arithmetic, resize.ts). No
// decoding and no file system here, so the browser trainer prepares samples with the same code as Node.
import type { Raster } from './augment.ts';
import { resizeLinearCv2, resizeNearestCv2 } from './resize.ts';

/** One training pair at the model size (width = height = size): interleaved 8-bit pixels and one 0/1 plane per mask class. */
export interface Sample extends Raster {
  id: string;
  size: number;
}

/**
 * How a decoded (grey, 8-bit) mask becomes foreground/background:
 * - a pixel is foreground when its value is above 127: 0/255 masks as in BUSI, with the grey levels of JPEG
 *   compression or anti-aliased edges thresholded half-way;
 * - a mask whose largest value is 1 is a 0/1 label map, and 1 is foreground (otherwise it would read as empty);
 * - a mask whose values are all between 0 and 127 (for example a 0/1/2 label map) has no foreground;
 *   `mobileutr check` reports it as an error.
 * Writes 0/1 into `out` and returns the number of foreground pixels.
 */
export function binarizeMask(grey: Uint8Array, out: Uint8Array): number {
  let max = 0;
  for (let i = 0; i < grey.length; i++) if (grey[i]! > max) max = grey[i]!;
  const threshold = max === 1 ? 0 : 127;
  let n = 0;
  for (let i = 0; i < grey.length; i++) {
    const fg = grey[i]! > threshold ? 1 : 0;
    out[i] = fg;
    n += fg;
  }
  return n;
}

/** One training pair at its stored size, masks already 0/1: what the original protocol augments before resizing. */
export interface Pair extends Raster {
  id: string;
}

/** Resizes a pair to size×size with cv2.resize's arithmetic: INTER_LINEAR image, INTER_NEAREST masks (the original protocol). */
export function resizePairCv2(p: Pair, size: number): Sample {
  const { width, height, channels } = p;
  if (width === size && height === size) return { ...p, size };
  const image = resizeLinearCv2(p.image, width, height, channels, size, size);
  const mask = new Uint8Array(p.classes * size * size);
  for (let k = 0; k < p.classes; k++) mask.set(resizeNearestCv2(p.mask.subarray(k * width * height, (k + 1) * width * height), width, height, 1, size, size), k * size * size);
  return { id: p.id, size, width: size, height: size, channels, image, mask, classes: p.classes };
}
