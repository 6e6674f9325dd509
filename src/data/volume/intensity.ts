/**
 * Intensity presets for volumes, each a clip to [lo, hi] followed by an affine map:
 * - `ct`: HU clipped to [-125, 275], scaled to [0, 1] (TransUNet's Synapse protocol, DESIGN §10);
 * - `window L,W`: clipped to [L - W/2, L + W/2], scaled to [0, 1];
 * - `mri`: per volume, clipped to its 0.5 and 99.5 percentiles (numpy's linear interpolation), then z-scored with
 *   the mean and standard deviation of the clipped volume.
 * Slices are stored as 8 bits over [lo, hi] (what src/data/resize.ts resizes, as cv2 does for the 2-D path) and
 * mapped to floats after resizing: value = q / 255 · scale + offset.
 *
 * @example
 *   const map = intensityMap(ct.data, parseIntensity('window 40,400'));
 *   const q = quantize(ct.data, map); // Uint8Array, 0 = lo, 255 = hi
 */
import { UserError } from '../../errors.ts';

export type Intensity = { kind: 'ct' } | { kind: 'window'; level: number; width: number } | { kind: 'mri' };

/** The clip range and the map from 8-bit codes to network inputs: value = q / 255 · scale + offset. */
export interface IntensityMap {
  lo: number;
  hi: number;
  scale: number;
  offset: number;
}

export const CT_RANGE = [-125, 275] as const;
export const MRI_PERCENTILES = [0.5, 99.5] as const;
/** Percentiles are taken on at most this many voxels (an even stride through larger volumes). */
const PERCENTILE_SAMPLE = 2 ** 24;

/** 'ct', 'mri', or a window 'L,W' (also 'window L,W' / 'window:L,W'). */
export function parseIntensity(text: string): Intensity {
  const t = text.trim().toLowerCase();
  if (t === 'ct') return { kind: 'ct' };
  if (t === 'mri' || t === 'mr') return { kind: 'mri' };
  return parseWindow(t.replace(/^window[\s:=]*/, ''));
}

/** A window 'L,W' (level and width in the volume's units, HU for CT); width > 0. */
export function parseWindow(text: string): Intensity {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$/.exec(text);
  if (!m || !(Number(m[2]) > 0)) throw new UserError(`intensity "${text}": expected ct, mri, or a window L,W (level, width > 0), for example 40,400`);
  return { kind: 'window', level: Number(m[1]), width: Number(m[2]) };
}

/** The p-th percentile (0..100) with numpy's default linear interpolation, on a sorted array. */
export function percentileSorted(sorted: Float32Array | Float64Array, p: number): number {
  const at = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/** The clip range and output map of a preset for one volume. */
export function intensityMap(data: Float32Array, preset: Intensity): IntensityMap {
  if (preset.kind === 'ct') return { lo: CT_RANGE[0], hi: CT_RANGE[1], scale: 1, offset: 0 };
  if (preset.kind === 'window') return { lo: preset.level - preset.width / 2, hi: preset.level + preset.width / 2, scale: 1, offset: 0 };
  const stride = Math.max(1, Math.ceil(data.length / PERCENTILE_SAMPLE));
  const sample = new Float32Array(Math.ceil(data.length / stride));
  for (let i = 0, o = 0; i < data.length; i += stride) sample[o++] = data[i]!;
  sample.sort();
  const lo = percentileSorted(sample, MRI_PERCENTILES[0]);
  const hi = percentileSorted(sample, MRI_PERCENTILES[1]);
  let sum = 0;
  let sumSq = 0;
  for (const v of data) {
    const c = v < lo ? lo : v > hi ? hi : v;
    sum += c;
    sumSq += c * c;
  }
  const mean = sum / data.length;
  const std = Math.sqrt(Math.max(0, sumSq / data.length - mean * mean));
  if (!(hi > lo) || !(std > 0)) return { lo, hi: lo + 1, scale: 0, offset: 0 }; // a constant volume: all zeros
  return { lo, hi, scale: (hi - lo) / std, offset: (lo - mean) / std };
}

/** Clips to [lo, hi] and stores as 8-bit codes (0 = lo, 255 = hi, rounded). */
export function quantize(data: Float32Array, map: IntensityMap): Uint8Array {
  const out = new Uint8Array(data.length);
  const k = 255 / (map.hi - map.lo);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    out[i] = v <= map.lo ? 0 : v >= map.hi ? 255 : Math.round((v - map.lo) * k);
  }
  return out;
}

/** 8-bit codes to network inputs. */
export function dequantize(q: Uint8Array, map: IntensityMap, out = new Float32Array(q.length)): Float32Array {
  const a = map.scale / 255;
  for (let i = 0; i < q.length; i++) out[i] = q[i]! * a + map.offset;
  return out;
}
