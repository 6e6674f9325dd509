// What a mask's values mean for training, from its decoded grey pixels (no decoding or files here): shared by
// `mobileutr check` (check.ts) and the browser's dataset check.
import { binarizeMask } from './pairs.ts';
import { resizeNearestCv2 } from './resize.ts';

export interface MaskFinding {
  severity: 'error' | 'warning' | 'info';
  message: string;
}

const pct = (n: number, total: number) => `${((100 * n) / total).toFixed(n * 1000 < total ? 2 : 1)}%`;

/**
 * Findings about one mask's grey values: empty, a 0/1 map, no value above 127 (a label map), grey levels other than
 * 0/255, foreground everywhere, and (with `size`) a foreground that vanishes at the model size. `format` names a
 * lossy encoding (jpeg, webp) in the warning about intermediate values.
 */
export function maskValueFindings(grey: Uint8Array, width: number, height: number, o: { format?: string; size?: number } = {}): MaskFinding[] {
  const findings: MaskFinding[] = [];
  const add = (severity: MaskFinding['severity'], message: string) => findings.push({ severity, message });
  const histogram = new Uint32Array(256);
  for (const v of grey) histogram[v]!++;
  const total = grey.length;
  let max = 0;
  for (let v = 255; v > 0; v--)
    if (histogram[v]) {
      max = v;
      break;
    }
  const foreground = binarizeMask(grey, new Uint8Array(total));
  const other = total - histogram[0]! - histogram[255]!;
  const lossy = o.format === 'jpeg' || o.format === 'webp';
  if (max === 0) add('info', 'empty mask (no foreground)');
  else if (max === 1) add('info', `0/1 mask: value 1 is read as foreground (${pct(foreground, total)} of the pixels)`);
  else if (max <= 127)
    add(
      'error',
      `no foreground: the largest value is ${max}, and foreground is > 127 (masks are 0/255, or 0/1); a label map with several classes must be split into masks/0, masks/1, ...`,
    );
  else if (other > 0)
    add('warning', `${other} pixels (${pct(other, total)}) are neither 0 nor 255; they are thresholded (> 127 is foreground)${lossy ? `; ${o.format!.toUpperCase()} is lossy, store masks as PNG` : ''}`);
  if (max > 1 && foreground === total) add('info', 'mask is foreground everywhere');
  if (o.size && foreground > 0) {
    const small = resizeNearestCv2(grey, width, height, 1, o.size, o.size);
    if (binarizeMask(small, new Uint8Array(o.size * o.size)) === 0)
      add('warning', `the foreground (${foreground} pixels) vanishes when the mask is resized to ${o.size}x${o.size}: it trains and scores as empty`);
  }
  return findings;
}

/** The warning for a mask with colour pixels (read as their grey level). */
export const colourMaskFinding = (colourPixels: number): MaskFinding[] =>
  colourPixels > 0
    ? [{ severity: 'warning', message: `colour mask: ${colourPixels} pixels are not grey; a mask is read as its grey level (luminance), so for example red (255,0,0) is 127, background` }]
    : [];
