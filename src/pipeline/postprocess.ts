/**
 * Logits [classes, H, W] of one image -> a label map: binary models threshold sigmoid at 0.5 (logit > 0) and
 * give 0/255; multi-class models give the arg-max class index per pixel.
 */
export function logitsToMask(logits: Float32Array, classes: number, plane: number): Uint8Array {
  const mask = new Uint8Array(plane);
  if (classes === 1) {
    for (let i = 0; i < plane; i++) mask[i] = logits[i]! > 0 ? 255 : 0;
    return mask;
  }
  for (let i = 0; i < plane; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[c * plane + i]! > logits[best * plane + i]!) best = c;
    mask[i] = best;
  }
  return mask;
}

/** Foreground probability per pixel as 8-bit (sigmoid for binary, 1 - p(background) for multi-class). */
export function logitsToProbability(logits: Float32Array, classes: number, plane: number): Uint8Array {
  const out = new Uint8Array(plane);
  for (let i = 0; i < plane; i++) {
    let p: number;
    if (classes === 1) p = 1 / (1 + Math.exp(-logits[i]!));
    else {
      let max = -Infinity;
      for (let c = 0; c < classes; c++) max = Math.max(max, logits[c * plane + i]!);
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(logits[c * plane + i]! - max);
      p = 1 - Math.exp(logits[i]! - max) / sum;
    }
    out[i] = Math.round(p * 255);
  }
  return out;
}
