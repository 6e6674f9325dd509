import type { DecodedImage } from '../data/image.ts';

export type Rgb = readonly [number, number, number];

export const PRED_COLOUR: Rgb = [255, 64, 64];
export const TRUTH_COLOUR: Rgb = [64, 255, 96];

function isEdge(mask: Uint8Array, w: number, h: number, i: number): boolean {
  if (!mask[i]) return false;
  const x = i % w;
  const y = (i - x) / w;
  return x === 0 || y === 0 || x === w - 1 || y === h - 1 || !mask[i - 1] || !mask[i + 1] || !mask[i - w] || !mask[i + w];
}

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
    const colour = truth && isEdge(truth, w, h, i) ? TRUTH_COLOUR : isEdge(pred, w, h, i) ? PRED_COLOUR : undefined;
    if (colour) out.set(colour, i * 3);
  }
  return out;
}
