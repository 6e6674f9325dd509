/** Per-image scores of a binary segmentation (DESIGN.md §5 plus HD95). */
export interface Scores {
  iou: number;
  dice: number;
  se: number;
  pc: number;
  sp: number;
  acc: number;
  f1: number;
  /** 95th-percentile Hausdorff distance in pixels; NaN when exactly one of prediction and truth is empty. */
  hd95: number;
}

export const METRIC_NAMES = ['iou', 'dice', 'se', 'pc', 'sp', 'acc', 'f1', 'hd95'] as const;

/**
 * The original work's formulas with their smoothing constants. Empty masks, defined explicitly (the original
 * helpers divide by ~0 there): empty truth and empty prediction score IoU = Dice = 1 (the smoothing gives
 * that), SE = PC = F1 = 1, HD95 = 0; empty truth with a non-empty prediction scores IoU = Dice = 0, SE = 1
 * (nothing was missed), PC = F1 = 0; a non-empty truth with an empty prediction scores SE = F1 = 0, PC = 1.
 */
export function scoreMasks(pred: Uint8Array, truth: Uint8Array, width: number, height: number): Scores {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i]! > 0;
    const g = truth[i]! > 0;
    if (p && g) tp++;
    else if (p) fp++;
    else if (g) fn++;
  }
  const tn = pred.length - tp - fp - fn;
  const iou = (tp + 1e-5) / (tp + fp + fn + 1e-5);
  const se = tp + fn === 0 ? 1 : tp / (tp + fn + 1e-6);
  const pc = tp + fp === 0 ? 1 : tp / (tp + fp + 1e-6);
  const f1 = tp + fn === 0 && tp + fp === 0 ? 1 : tp + fn === 0 || tp + fp === 0 ? 0 : (2 * se * pc) / (se + pc + 1e-6);
  return {
    iou,
    dice: (2 * iou) / (iou + 1),
    se,
    pc,
    sp: tn / (tn + fp + 1e-6),
    acc: (tp + tn) / pred.length,
    f1,
    hd95: hd95(pred, truth, width, height),
  };
}

/** Squared Euclidean distance to the nearest set pixel (exact, Felzenszwalb-Huttenlocher), Infinity when none. */
function distanceTransform(set: Uint8Array, width: number, height: number): Float64Array {
  const INF = 1e20;
  const d = new Float64Array(width * height);
  for (let i = 0; i < d.length; i++) d[i] = set[i] ? 0 : INF;
  const n = Math.max(width, height);
  const f = new Float64Array(n);
  const out = new Float64Array(n);
  const v = new Int32Array(n);
  const z = new Float64Array(n + 1);
  const pass = (len: number, get: (i: number) => number, put: (i: number, x: number) => void) => {
    for (let i = 0; i < len; i++) f[i] = get(i);
    let k = 0;
    v[0] = 0;
    z[0] = -Infinity;
    z[1] = Infinity;
    for (let q = 1; q < len; q++) {
      let s = (f[q]! + q * q - (f[v[k]!]! + v[k]! * v[k]!)) / (2 * q - 2 * v[k]!);
      while (s <= z[k]!) {
        k--;
        s = (f[q]! + q * q - (f[v[k]!]! + v[k]! * v[k]!)) / (2 * q - 2 * v[k]!);
      }
      k++;
      v[k] = q;
      z[k] = s;
      z[k + 1] = Infinity;
    }
    k = 0;
    for (let q = 0; q < len; q++) {
      while (z[k + 1]! < q) k++;
      out[q] = (q - v[k]!) ** 2 + f[v[k]!]!;
    }
    for (let i = 0; i < len; i++) put(i, out[i]!);
  };
  for (let x = 0; x < width; x++) pass(height, (y) => d[y * width + x]!, (y, val) => (d[y * width + x] = val));
  for (let y = 0; y < height; y++) pass(width, (x) => d[y * width + x]!, (x, val) => (d[y * width + x] = val));
  return d;
}

/** Whether pixel `i` of a w×h mask is foreground touching the background (4-neighbourhood) or the image border. */
export function isBoundaryPixel(mask: Uint8Array, w: number, h: number, i: number): boolean {
  if (!mask[i]) return false;
  const x = i % w;
  const y = (i - x) / w;
  return x === 0 || y === 0 || x === w - 1 || y === h - 1 || !mask[i - 1] || !mask[i + 1] || !mask[i - w] || !mask[i + w];
}

function boundary(mask: Uint8Array, width: number, height: number): Uint8Array {
  return mask.map((_, i) => (isBoundaryPixel(mask, width, height, i) ? 1 : 0));
}

/** HD95 as MedPy computes it: the 95th percentile of both directed surface-distance sets pooled. */
export function hd95(pred: Uint8Array, truth: Uint8Array, width: number, height: number): number {
  const pEmpty = !pred.some((v) => v > 0);
  const gEmpty = !truth.some((v) => v > 0);
  if (pEmpty && gEmpty) return 0;
  if (pEmpty || gEmpty) return NaN;
  const bp = boundary(pred.map((v) => (v > 0 ? 1 : 0)), width, height);
  const bg = boundary(truth.map((v) => (v > 0 ? 1 : 0)), width, height);
  const dp = distanceTransform(bp, width, height);
  const dg = distanceTransform(bg, width, height);
  const dists: number[] = [];
  for (let i = 0; i < bp.length; i++) {
    if (bp[i]) dists.push(Math.sqrt(dg[i]!));
    if (bg[i]) dists.push(Math.sqrt(dp[i]!));
  }
  dists.sort((a, b) => a - b);
  // numpy.percentile's default linear interpolation
  const pos = 0.95 * (dists.length - 1);
  const lo = Math.floor(pos);
  return dists[lo]! + (dists[Math.min(lo + 1, dists.length - 1)]! - dists[lo]!) * (pos - lo);
}

/** Mean ± std accumulator over images (NaN scores are skipped and counted). */
export class MetricAccumulator {
  private readonly values = new Map<string, number[]>();

  update(scores: Scores): void {
    for (const name of METRIC_NAMES) {
      const list = this.values.get(name) ?? [];
      list.push(scores[name]);
      this.values.set(name, list);
    }
  }

  aggregate(): Record<string, { mean: number; std: number; n: number; skipped: number }> {
    const out: Record<string, { mean: number; std: number; n: number; skipped: number }> = {};
    for (const [name, all] of this.values) {
      const xs = all.filter((v) => Number.isFinite(v));
      const mean = xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
      const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length || 1));
      out[name] = { mean: xs.length ? mean : NaN, std: xs.length ? std : NaN, n: xs.length, skipped: all.length - xs.length };
    }
    return out;
  }

  reset(): void {
    this.values.clear();
  }
}
