/**
 * Means of case scores: over cases per class, then over classes (TransUNet's order; with rows left out of a mean,
 * as the 'mm' protocol leaves some, this differs from one mean over every row). Std is the population std (numpy's
 * default): per class over its cases; for the overall figure over cases, of each case's mean over its classes.
 */
import type { CaseScore, ClassScore, Protocol } from './score.ts';
import { DISTANCE_UNIT } from './score.ts';

export const SCORE_METRICS = ['dice', 'iou', 'hd95', 'assd'] as const;
export type ScoreMetric = (typeof SCORE_METRICS)[number];

/** Mean and std of the `n` values that counted; null when none did. */
export interface Stat {
  mean: number | null;
  std: number | null;
  n: number;
}

export interface ClassSummary {
  cls: number;
  name: string;
  dice: Stat;
  iou: Stat;
  hd95: Stat;
  assd: Stat;
  /** Cases where the class was in neither volume, in the truth only, in the prediction only. */
  absent: number;
  missed: number;
  spurious: number;
}

export interface VolumeSummary {
  protocol: Protocol;
  /** Unit of HD95 and ASSD: 'mm' or 'voxels, TransUNet'. */
  distanceUnit: string;
  cases: string[];
  classes: ClassSummary[];
  /** Mean over classes of the class means (n: classes with a mean); std over cases of each case's class mean. */
  overall: Record<ScoreMetric, Stat>;
}

/** Whether a row's value of `metric` counts in the means (see score.ts for the protocols). */
export function counts(row: ClassScore, metric: ScoreMetric, protocol: Protocol): boolean {
  if (protocol === 'transunet') return true;
  return row.outcome !== 'absent' && row[metric] !== null;
}

/** `classNames[k]` names class k (background first); missing names read "class k". */
export function summarize(cases: readonly CaseScore[], classNames: readonly string[], protocol: Protocol): VolumeSummary {
  const wrong = cases.find((c) => c.protocol !== protocol);
  if (wrong) throw new Error(`case ${wrong.id} was scored with protocol ${wrong.protocol}, not ${protocol}`);
  const ids = [...new Set(cases.flatMap((c) => c.classes.map((r) => r.cls)))].sort((a, b) => a - b);
  const classes = ids.map((cls): ClassSummary => {
    const rows = cases.flatMap((c) => c.classes.filter((r) => r.cls === cls));
    const stat = (m: ScoreMetric) => stats(rows.filter((r) => counts(r, m, protocol)).map((r) => r[m]!));
    const tally = (o: ClassScore['outcome']) => rows.filter((r) => r.outcome === o).length;
    return { cls, name: classNames[cls] ?? `class ${cls}`, dice: stat('dice'), iou: stat('iou'), hd95: stat('hd95'), assd: stat('assd'), absent: tally('absent'), missed: tally('missed'), spurious: tally('spurious') };
  });
  const overall = {} as Record<ScoreMetric, Stat>;
  for (const m of SCORE_METRICS) {
    const means = classes.map((c) => c[m].mean).filter((v): v is number => v !== null);
    const perCase = cases.map((c) => c.classes.filter((r) => counts(r, m, protocol)).map((r) => r[m]!)).filter((xs) => xs.length > 0);
    overall[m] = { mean: means.length ? means.reduce((a, b) => a + b, 0) / means.length : null, std: stats(perCase.map(meanOf)).std, n: means.length };
  }
  return { protocol, distanceUnit: DISTANCE_UNIT[protocol], cases: cases.map((c) => c.id), classes, overall };
}

const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function stats(xs: number[]): Stat {
  if (xs.length === 0) return { mean: null, std: null, n: 0 };
  const mean = meanOf(xs);
  return { mean, std: Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length), n: xs.length };
}
