import type { DecodedImage } from '../data/image.ts';
import { isBoundaryPixel } from './metrics.ts';

export type Rgb = readonly [number, number, number];

export const PRED_COLOUR: Rgb = [255, 64, 64];
export const TRUTH_COLOUR: Rgb = [64, 255, 96];

/**
 * Draws a prediction over an image: filled with `opacity`, outlined; the ground truth (when given) as an
 * outline of another colour. Masks are w×h, any non-zero value is foreground. Returns RGB pixels.
 */
export function drawOverlay(image: DecodedImage, pred: Uint8Array, truth?: Uint8Array, opacity = 0.35): Uint8Array {
  const { width: w, height: h, channels } = image;
  const out = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    for (let c = 0; c < 3; c++) {
      const v = image.pixels[i * channels + (channels >= 3 ? c : 0)]!;
      out[i * 3 + c] = pred[i] ? Math.round(v * (1 - opacity) + PRED_COLOUR[c]! * opacity) : v;
    }
    const colour = truth && isBoundaryPixel(truth, w, h, i) ? TRUTH_COLOUR : isBoundaryPixel(pred, w, h, i) ? PRED_COLOUR : undefined;
    if (colour) out.set(colour, i * 3);
  }
  return out;
}
