// Display window/level: presets in HU for CT, an automatic window from percentiles for MRI (or anything that is
// not in HU), and the windowed 8-bit grey of a slice. Display only: the model's input follows its own intensity
// preset (volume-segment.ts).
import { MRI_PERCENTILES, percentileSorted } from '../data/volume/intensity.ts';

export interface WindowLevel {
  level: number;
  width: number;
}

export const WINDOW_PRESETS = {
  'ct-abdomen': { label: 'CT abdomen (40/400)', level: 40, width: 400 },
  'ct-bone': { label: 'CT bone (400/1800)', level: 400, width: 1800 },
  brain: { label: 'Brain (40/80)', level: 40, width: 80 },
} as const satisfies Record<string, { label: string } & WindowLevel>;

export type WindowPreset = keyof typeof WINDOW_PRESETS | 'auto' | 'custom';

/** At most this many voxels are sorted for percentiles (an even stride through larger volumes). */
const SAMPLE = 1 << 20;

function sortedSample(data: Float32Array): Float32Array {
  const stride = Math.max(1, Math.ceil(data.length / SAMPLE));
  const sample = new Float32Array(Math.ceil(data.length / stride));
  for (let i = 0, o = 0; i < data.length; i += stride) sample[o++] = data[i]!;
  return sample.sort();
}

/** The window spanning the 0.5 and 99.5 percentiles (the clip of the MRI preset). */
export function autoWindow(data: Float32Array): WindowLevel {
  const s = sortedSample(data);
  const lo = percentileSorted(s, MRI_PERCENTILES[0]);
  const hi = percentileSorted(s, MRI_PERCENTILES[1]);
  const width = hi > lo ? hi - lo : 1;
  return { level: lo + width / 2, width };
}

/** True for a volume in Hounsfield units: air (≤ −900) in at least 1 % of the voxels and nothing far below −1024. */
export function looksLikeCt(data: Float32Array): boolean {
  const s = sortedSample(data);
  return s.length > 0 && s[0]! >= -3100 && percentileSorted(s, 1) <= -900;
}

/** Windowed 8-bit grey: lo = level − width/2 -> 0, hi -> 255. */
export function windowPlane(plane: Float32Array, w: WindowLevel, out = new Uint8Array(plane.length)): Uint8Array {
  const lo = w.level - w.width / 2;
  const k = 255 / w.width;
  for (let i = 0; i < plane.length; i++) {
    const v = (plane[i]! - lo) * k;
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
  }
  return out;
}

/** How a window reads next to its controls (integers where the values are). */
export function formatWindow(w: WindowLevel): string {
  const f = (v: number) => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
  return `L ${f(w.level)} / W ${f(w.width)}`;
}
