import { describe, expect, it } from 'vitest';
import { hd95, MetricAccumulator, scoreMasks } from '../../src/eval/metrics.ts';

/** A w×h mask with the rectangle [x0,x1)×[y0,y1) set. */
function rect(w: number, h: number, x0: number, y0: number, x1: number, y1: number): Uint8Array {
  const m = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * w + x] = 255;
  return m;
}

describe('segmentation metrics (DESIGN.md §5)', () => {
  it('match hand-computed values on overlapping squares', () => {
    // truth 4x4 = 16 px, prediction 4x4 shifted by 2 in x: overlap 8, union 24, image 100 px
    const s = scoreMasks(rect(10, 10, 2, 2, 6, 6), rect(10, 10, 0, 2, 4, 6), 10, 10);
    expect(s.iou).toBeCloseTo(8 / 24, 6);
    expect(s.dice).toBeCloseTo((2 * 8) / 32, 6);
    expect(s.se).toBeCloseTo(8 / 16, 6);
    expect(s.pc).toBeCloseTo(8 / 16, 6);
    expect(s.sp).toBeCloseTo(76 / 84, 6);
    expect(s.acc).toBeCloseTo(84 / 100, 6);
    expect(s.f1).toBeCloseTo(0.5, 5);
    expect(s.hd95).toBeCloseTo(2, 6);
  });

  it('a perfect prediction scores 1 and HD95 0', () => {
    const m = rect(8, 8, 1, 1, 5, 7);
    expect(scoreMasks(m, m, 8, 8)).toMatchObject({ iou: 1, dice: 1, acc: 1, hd95: 0 });
    expect(scoreMasks(m, m, 8, 8).f1).toBeCloseTo(1, 5);
  });

  it('empty truth and empty prediction: a perfect score, defined explicitly', () => {
    const empty = new Uint8Array(64);
    expect(scoreMasks(empty, empty, 8, 8)).toEqual({ iou: 1, dice: 1, se: 1, pc: 1, sp: 64 / (64 + 1e-6), acc: 1, f1: 1, hd95: 0 });
  });

  it('empty truth with a false detection: IoU 0, SE 1, PC 0, HD95 undefined (NaN)', () => {
    const s = scoreMasks(rect(8, 8, 0, 0, 2, 2), new Uint8Array(64), 8, 8);
    expect(s.iou).toBeCloseTo(0, 5);
    expect(s.dice).toBeCloseTo(0, 5);
    expect([s.se, s.pc, s.f1]).toEqual([1, 0, 0]);
    expect(s.hd95).toBeNaN();
  });

  it('a missed lesion: SE 0, PC 1, F1 0', () => {
    const s = scoreMasks(new Uint8Array(64), rect(8, 8, 0, 0, 2, 2), 8, 8);
    expect([s.se, s.pc, s.f1]).toEqual([0, 1, 0]);
    expect(s.iou).toBeLessThan(1e-5);
  });

  it('HD95 of two distant single pixels is their distance', () => {
    const a = new Uint8Array(100);
    const b = new Uint8Array(100);
    a[0] = 1;
    b[3 * 10 + 4] = 1;
    expect(hd95(a, b, 10, 10)).toBeCloseTo(5, 6);
  });

  it('the accumulator reports mean ± std and skips NaN', () => {
    const acc = new MetricAccumulator();
    const m = rect(8, 8, 1, 1, 5, 7);
    acc.update(scoreMasks(m, m, 8, 8));
    acc.update(scoreMasks(new Uint8Array(64), m, 8, 8));
    const r = acc.aggregate();
    expect(r.iou!.mean).toBeCloseTo(0.5, 5);
    expect(r.iou!.std).toBeCloseTo(0.5, 5);
    expect(r.hd95).toMatchObject({ n: 1, skipped: 1, mean: 0 });
  });
});
