/** Per-case scores under the 'mm' and 'transunet' protocols (src/eval/volume/score.ts) and their means (summary.ts). */
import { describe, expect, it } from 'vitest';
import type { Vec3 } from '../../src/data/volume/volume.ts';
import { UserError } from '../../src/errors.ts';
import { scoreCase, type CaseScore, type ClassScore } from '../../src/eval/volume/score.ts';
import { summarize } from '../../src/eval/volume/summary.ts';
import { surfaceMetrics } from '../../src/eval/volume/surface.ts';

/** Sets lo <= p < hi to `value` (x fastest). */
function box(dims: Vec3, lo: Vec3, hi: Vec3, value = 1, into = new Uint8Array(dims[0] * dims[1] * dims[2])): Uint8Array {
  for (let z = lo[2]; z < hi[2]; z++) for (let y = lo[1]; y < hi[1]; y++) for (let x = lo[0]; x < hi[0]; x++) into[x + dims[0] * (y + dims[1] * z)] = value;
  return into;
}

const dims: Vec3 = [8, 6, 10];
const spacing: Vec3 = [0.8, 0.8, 3];
const empty = () => new Uint8Array(dims[0] * dims[1] * dims[2]);

/**
 * Five classes, one case:
 * 1: two boxes 12 mm apart (the hand-checked pair of volume-surface.test.ts): Dice 0, HD95 sqrt(225.64) mm, sqrt(26) voxels;
 * 2: 4x4x4 vs the same shifted by one voxel along x: overlap 3x4x4 = 48, Dice 2·48/128 = 0.75, IoU 48/80 = 0.6;
 * 3: in neither volume; 4: truth only; 5: prediction only.
 */
function fiveClasses() {
  const pred = empty();
  const truth = empty();
  box(dims, [0, 0, 0], [3, 3, 2], 1, pred);
  box(dims, [1, 0, 5], [4, 3, 7], 1, truth);
  box(dims, [4, 0, 0], [8, 4, 4], 2, pred);
  box(dims, [3, 0, 0], [7, 4, 4], 2, truth);
  box(dims, [0, 4, 8], [2, 6, 10], 4, truth);
  box(dims, [6, 4, 8], [8, 6, 10], 5, pred);
  return { id: 'c1', pred, truth, dims, spacing, classes: 6 };
}

describe("scoreCase, protocol 'mm'", () => {
  const s = scoreCase(fiveClasses());
  const row = (k: number) => s.classes.find((r) => r.cls === k)!;

  it('scores every foreground class, with HD95 in mm', () => {
    expect(s.classes.map((r) => r.cls)).toEqual([1, 2, 3, 4, 5]);
    expect(row(1)).toMatchObject({ dice: 0, iou: 0, outcome: 'scored', truthVoxels: 18, predVoxels: 18 });
    expect(row(1).hd95).toBeCloseTo(Math.sqrt(225.64), 12);
    expect(row(2)).toMatchObject({ dice: 0.75, iou: 0.6, outcome: 'scored', truthVoxels: 64, predVoxels: 64 });
    // class 2's two boxes touch along x: surface distances in mm, computed by the binary path on the full volume
    const binary = (v: Uint8Array) => v.map((x) => (x === 2 ? 1 : 0));
    expect(row(2).hd95).toBeCloseTo(surfaceMetrics(binary(fiveClasses().pred), binary(fiveClasses().truth), dims, spacing)!.hd95, 12);
  });

  it('empty masks: absent -> 1/1/0 flagged, missed and spurious -> Dice 0, no HD95', () => {
    expect(row(3)).toEqual({ cls: 3, dice: 1, iou: 1, hd95: 0, assd: 0, truthVoxels: 0, predVoxels: 0, outcome: 'absent' });
    expect(row(4)).toEqual({ cls: 4, dice: 0, iou: 0, hd95: null, assd: null, truthVoxels: 8, predVoxels: 0, outcome: 'missed' });
    expect(row(5)).toEqual({ cls: 5, dice: 0, iou: 0, hd95: null, assd: null, truthVoxels: 0, predVoxels: 8, outcome: 'spurious' });
  });

  it('a non-positive spacing is a UserError naming the case; TransUNet does not need one', () => {
    const c = { ...fiveClasses(), spacing: [0.8, 0, 3] as Vec3 };
    expect(() => scoreCase(c)).toThrow(UserError);
    expect(() => scoreCase(c)).toThrow(/case c1: voxel spacing 0.8 x 0 x 3 mm/);
    expect(scoreCase(c, 'transunet').classes).toHaveLength(5);
  });

  it('a class index beyond the class count is a UserError', () => {
    expect(() => scoreCase({ ...fiveClasses(), classes: 5 })).toThrow(/class index 5 in the prediction, but there are 5 classes/);
  });

  it('several components per class and other classes between them: same as the binary masks on the full grid', () => {
    const d: Vec3 = [40, 30, 12];
    const pred = new Uint8Array(d[0] * d[1] * d[2]);
    const truth = new Uint8Array(pred.length);
    box(d, [1, 1, 1], [6, 7, 4], 1, pred);
    box(d, [30, 20, 6], [38, 29, 11], 1, pred);
    box(d, [2, 2, 1], [7, 6, 5], 1, truth);
    box(d, [29, 22, 8], [36, 28, 12], 1, truth);
    box(d, [12, 10, 3], [20, 18, 9], 2, truth);
    box(d, [13, 9, 3], [21, 18, 8], 2, pred);
    const sp: Vec3 = [0.7, 1.1, 2.5];
    const r = scoreCase({ id: 'x', pred, truth, dims: d, spacing: sp, classes: 3 });
    for (const k of [1, 2]) {
      const m = surfaceMetrics(pred.map((v) => (v === k ? 1 : 0)), truth.map((v) => (v === k ? 1 : 0)), d, sp)!;
      expect(r.classes[k - 1]!.hd95).toBeCloseTo(m.hd95, 12);
      expect(r.classes[k - 1]!.assd).toBeCloseTo(m.assd, 12);
    }
  });
});

describe("scoreCase, protocol 'transunet' (calculate_metric_percase)", () => {
  const s = scoreCase(fiveClasses(), 'transunet');
  const row = (k: number) => s.classes.find((r) => r.cls === k)!;

  it('both non-empty: medpy Dice and HD95 in voxels, the spacing ignored', () => {
    expect(s.protocol).toBe('transunet');
    expect(row(1).dice).toBe(0);
    expect(row(1).hd95).toBeCloseTo(Math.sqrt(26), 12);
    expect(row(2).dice).toBe(0.75);
  });

  it('prediction without truth -> (1, 0); truth without prediction -> (0, 0); neither -> (0, 0)', () => {
    expect(row(5)).toMatchObject({ dice: 1, hd95: 0, outcome: 'spurious' });
    expect(row(4)).toMatchObject({ dice: 0, hd95: 0, outcome: 'missed' });
    expect(row(3)).toMatchObject({ dice: 0, hd95: 0, outcome: 'absent' });
  });
});

describe('summarize: mean over cases per class, then over classes', () => {
  const r = (cls: number, dice: number, hd95: number | null, outcome: ClassScore['outcome']): ClassScore => ({
    cls,
    dice,
    iou: dice,
    hd95,
    assd: hd95,
    truthVoxels: outcome === 'scored' || outcome === 'missed' ? 10 : 0,
    predVoxels: outcome === 'scored' || outcome === 'spurious' ? 10 : 0,
    outcome,
  });
  const names = ['background', 'liver', 'spleen'];

  it("'mm': absent rows out of every mean, missed rows in the Dice mean only", () => {
    const cases: CaseScore[] = [
      { id: 'a', protocol: 'mm', classes: [r(1, 0.2, 10, 'scored'), r(2, 0.8, 2, 'scored')] },
      { id: 'b', protocol: 'mm', classes: [r(1, 0.4, 6, 'scored'), r(2, 0, null, 'missed')] },
      { id: 'c', protocol: 'mm', classes: [r(1, 1, 0, 'absent'), r(2, 0.6, 4, 'scored')] },
    ];
    const s = summarize(cases, names, 'mm');
    expect(s.distanceUnit).toBe('mm');
    expect(s.cases).toEqual(['a', 'b', 'c']);
    const [liver, spleen] = s.classes;
    expect(liver).toMatchObject({ cls: 1, name: 'liver', absent: 1, missed: 0, spurious: 0 });
    expect(liver!.dice.mean).toBeCloseTo(0.3, 12); // (0.2 + 0.4) / 2: case c (absent) left out
    expect(liver!.dice.std).toBeCloseTo(0.1, 12);
    expect(liver!.dice.n).toBe(2);
    expect(liver!.hd95.mean).toBeCloseTo(8, 12);
    expect(spleen!.dice.mean).toBeCloseTo(1.4 / 3, 12); // (0.8 + 0 + 0.6) / 3: the missed case counts
    expect(spleen!.hd95).toMatchObject({ mean: 3, n: 2 }); // (2 + 4) / 2: the missed case has no HD95
    expect(spleen!.missed).toBe(1);
    // over classes: (0.3 + 0.4667) / 2 = 0.3833, not the mean of the five counted rows (2.0 / 5 = 0.4)
    expect(s.overall.dice.mean).toBeCloseTo((0.3 + 1.4 / 3) / 2, 12);
    expect(s.overall.dice.n).toBe(2);
    expect(s.overall.hd95.mean).toBeCloseTo(5.5, 12);
    // overall std: over cases of each case's class mean (0.5, 0.2, 0.6)
    const perCase = [0.5, 0.2, 0.6];
    const m = perCase.reduce((a, b) => a + b) / 3;
    expect(s.overall.dice.std).toBeCloseTo(Math.sqrt(perCase.reduce((a, b) => a + (b - m) ** 2, 0) / 3), 12);
  });

  it("'transunet': every row counts", () => {
    const cases: CaseScore[] = [
      { id: 'a', protocol: 'transunet', classes: [r(1, 0.2, 10, 'scored'), r(2, 0.8, 2, 'scored')] },
      { id: 'b', protocol: 'transunet', classes: [r(1, 0.4, 6, 'scored'), r(2, 0, 0, 'missed')] },
      { id: 'c', protocol: 'transunet', classes: [r(1, 0, 0, 'absent'), r(2, 1, 0, 'spurious')] },
    ];
    const s = summarize(cases, names, 'transunet');
    expect(s.distanceUnit).toBe('voxels, TransUNet');
    expect(s.classes[0]!.dice).toMatchObject({ n: 3 });
    expect(s.classes[0]!.dice.mean).toBeCloseTo(0.2, 12);
    expect(s.classes[1]!.dice.mean).toBeCloseTo(0.6, 12);
    expect(s.classes[1]!.hd95.mean).toBeCloseTo(2 / 3, 12);
    expect(s.overall.dice.mean).toBeCloseTo(0.4, 12);
    expect(s.overall.hd95.mean).toBeCloseTo((16 / 3 + 2 / 3) / 2, 12);
  });

  it('from scored volumes end to end, and a protocol mix-up is refused', () => {
    const a = scoreCase(fiveClasses());
    const s = summarize([a, a], ['bg', 'one', 'two', 'three', 'four', 'five'], 'mm');
    expect(s.classes.map((c) => c.name)).toEqual(['one', 'two', 'three', 'four', 'five']);
    expect(s.classes[2]).toMatchObject({ absent: 2, dice: { mean: null, std: null, n: 0 } });
    expect(s.overall.dice.n).toBe(4); // class 3 has no mean
    expect(s.overall.dice.mean).toBeCloseTo((0 + 0.75 + 0 + 0) / 4, 12);
    expect(() => summarize([a], [], 'transunet')).toThrow(/protocol mm/);
  });
});
