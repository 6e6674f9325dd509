/**
 * Scores of one case (a predicted and a true class-index volume) per foreground class: Dice, IoU, HD95 and ASSD,
 * under one of two protocols.
 *
 * `'mm'` (default; medpy's `hd95(..., voxelspacing=spacing)`, both directions pooled before the percentile; MONAI's
 * `compute_hausdorff_distance(percentile=95, spacing=...)` takes the larger of the two directed percentiles instead,
 * so it can read a little higher):
 * - Dice = 2|P∩G| / (|P| + |G|), IoU = |P∩G| / |P∪G| (medpy `dc`, `jc`; no smoothing); HD95 and ASSD in mm;
 * - class in neither (`absent`): Dice = IoU = 1, HD95 = ASSD = 0 on the row, but left out of every mean (nnU-Net
 *   leaves such cases out the same way), counted per class;
 * - class in the truth only (`missed`) or in the prediction only (`spurious`): Dice = IoU = 0, counted in the Dice
 *   and IoU means; HD95 and ASSD undefined (null), left out of their means and counted.
 *
 * `'transunet'` (TransUNet's `calculate_metric_percase`, for comparison with published Synapse tables): both
 * non-empty -> medpy Dice and HD95 in voxels (spacing ignored); prediction non-empty and truth empty -> (1, 0);
 * otherwise (0, 0). IoU and ASSD (TransUNet reports neither) follow the same rule. Every row counts in the means.
 *
 * Either protocol averages over cases per class, then over classes (summarize).
 */
import { UserError } from '../../errors.ts';
import type { Vec3 } from '../../data/volume/volume.ts';
import { boxDims, cropMask, unionBox, type Box } from './box.ts';
import { surfaceMetrics } from './surface.ts';

export type Protocol = 'mm' | 'transunet';
export const PROTOCOLS: readonly Protocol[] = ['mm', 'transunet'];

/** The unit HD95 and ASSD are in, as column headers name it. */
export const DISTANCE_UNIT: Record<Protocol, string> = { mm: 'mm', transunet: 'voxels, TransUNet' };

export type Outcome = 'scored' | 'absent' | 'missed' | 'spurious';

export interface ClassScore {
  /** Class index, 1..classes-1. */
  cls: number;
  dice: number;
  iou: number;
  /** In mm ('mm') or voxels ('transunet'); null when undefined (see the protocol). */
  hd95: number | null;
  assd: number | null;
  truthVoxels: number;
  predVoxels: number;
  /** Which masks were non-empty: both (`scored`), neither (`absent`), truth only (`missed`), prediction only (`spurious`). */
  outcome: Outcome;
}

export interface CaseScore {
  id: string;
  protocol: Protocol;
  classes: ClassScore[];
}

export interface CaseVolumes {
  id: string;
  /** Class index per voxel, i fastest; `pred` and `truth` in the same voxel order. */
  pred: Uint8Array;
  truth: Uint8Array;
  dims: Vec3;
  /** Voxel size in mm along the three axes of `dims`. */
  spacing: Vec3;
  /** Number of classes including background (0). */
  classes: number;
}

/** Scores classes 1..classes-1 of one case. */
export function scoreCase(c: CaseVolumes, protocol: Protocol = 'mm'): CaseScore {
  const [nx, ny, nz] = c.dims;
  if (c.pred.length !== nx * ny * nz || c.truth.length !== c.pred.length)
    throw new RangeError(`case ${c.id}: ${c.pred.length} predicted and ${c.truth.length} true voxels for dims ${c.dims.join('x')}`);
  if (protocol === 'mm' && !c.spacing.every((s) => Number.isFinite(s) && s > 0))
    throw new UserError(`case ${c.id}: voxel spacing ${c.spacing.join(' x ')} mm is not positive, so HD95 in mm is undefined (--protocol transunet scores in voxels)`);
  if (!(Number.isInteger(c.classes) && c.classes >= 2 && c.classes <= 256)) throw new RangeError(`case ${c.id}: ${c.classes} classes (2..256 with background)`);
  const stats = classStats(c);
  const spacing: Vec3 = protocol === 'mm' ? c.spacing : [1, 1, 1];
  const classes: ClassScore[] = [];
  for (let k = 1; k < c.classes; k++) {
    const p = stats.pred[k]!;
    const g = stats.truth[k]!;
    const tp = stats.both[k]!;
    const row = { cls: k, truthVoxels: g, predVoxels: p };
    if (p > 0 && g > 0) {
      const box = unionBox(stats.box(stats.predBox, k), stats.box(stats.truthBox, k))!;
      const s = surfaceMetrics(cropMask(c.pred, c.dims, box, k), cropMask(c.truth, c.dims, box, k), boxDims(box), spacing)!;
      classes.push({ ...row, dice: (2 * tp) / (p + g), iou: tp / (p + g - tp), hd95: s.hd95, assd: s.assd, outcome: 'scored' });
      continue;
    }
    const outcome: Outcome = p > 0 ? 'spurious' : g > 0 ? 'missed' : 'absent';
    if (protocol === 'transunet') {
      const v = outcome === 'spurious' ? 1 : 0;
      classes.push({ ...row, dice: v, iou: v, hd95: 0, assd: 0, outcome });
    } else if (outcome === 'absent') classes.push({ ...row, dice: 1, iou: 1, hd95: 0, assd: 0, outcome });
    else classes.push({ ...row, dice: 0, iou: 0, hd95: null, assd: null, outcome });
  }
  return { id: c.id, protocol, classes };
}

/** Voxel counts, overlaps and bounding boxes of every class in one pass over both volumes. */
function classStats(c: CaseVolumes) {
  const [nx, ny, nz] = c.dims;
  const pred = new Float64Array(256);
  const truth = new Float64Array(256);
  const both = new Float64Array(256);
  const newBox = () => ({ lo: new Int32Array(768).fill(2 ** 30), hi: new Int32Array(768) }); // [class * 3 + axis]
  const predBox = newBox();
  const truthBox = newBox();
  const grow = (b: ReturnType<typeof newBox>, k: number, x: number, y: number, z: number) => {
    const a = 3 * k;
    if (x < b.lo[a]!) b.lo[a] = x;
    if (x >= b.hi[a]!) b.hi[a] = x + 1;
    if (y < b.lo[a + 1]!) b.lo[a + 1] = y;
    if (y >= b.hi[a + 1]!) b.hi[a + 1] = y + 1;
    if (z < b.lo[a + 2]!) b.lo[a + 2] = z;
    if (z >= b.hi[a + 2]!) b.hi[a + 2] = z + 1;
  };
  let n = 0;
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++, n++) {
        const p = c.pred[n]!;
        const g = c.truth[n]!;
        pred[p]++;
        truth[g]++;
        if (p === g) both[p]++;
        if (p !== 0) grow(predBox, p, x, y, z);
        if (g !== 0) grow(truthBox, g, x, y, z);
      }
  for (let k = c.classes; k < 256; k++)
    if (pred[k]! > 0 || truth[k]! > 0)
      throw new UserError(`case ${c.id}: class index ${k} in the ${pred[k]! > 0 ? 'prediction' : 'truth'}, but there are ${c.classes} classes (0..${c.classes - 1})`);
  const box = (b: ReturnType<typeof newBox>, k: number): Box | undefined =>
    b.hi[3 * k]! > 0 ? { lo: [b.lo[3 * k]!, b.lo[3 * k + 1]!, b.lo[3 * k + 2]!], hi: [b.hi[3 * k]!, b.hi[3 * k + 1]!, b.hi[3 * k + 2]!] } : undefined;
  return { pred, truth, both, predBox, truthBox, box };
}
