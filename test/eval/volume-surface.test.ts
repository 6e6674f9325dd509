/**
 * Surface distances (src/eval/volume/surface.ts, edt.ts) against a case checked by hand, a brute-force distance
 * transform, and facts from scipy implementing medpy's definitions (test/eval/volume-facts.py).
 */
import { describe, expect, it } from 'vitest';
import type { Vec3 } from '../../src/data/volume/volume.ts';
import { squaredDistanceTransform } from '../../src/eval/volume/edt.ts';
import { scoreCase } from '../../src/eval/volume/score.ts';
import { borderOf, directedDistances, hd95, surfaceMetrics } from '../../src/eval/volume/surface.ts';
import { Rng } from '../../src/util/rng.ts';

/** A 0/1 box lo <= p < hi (x fastest). */
function box(dims: Vec3, lo: Vec3, hi: Vec3, into = new Uint8Array(dims[0] * dims[1] * dims[2])): Uint8Array {
  for (let z = lo[2]; z < hi[2]; z++) for (let y = lo[1]; y < hi[1]; y++) for (let x = lo[0]; x < hi[0]; x++) into[x + dims[0] * (y + dims[1] * z)] = 1;
  return into;
}

// the shapes of volume-facts.py, integer-defined: voxel (x, y, z) is set when w·(p - c)² + (hash3 mod 64)·jitter <= r
interface ShapeSpec {
  w: Vec3;
  c: Vec3;
  r: number;
  jitter: number;
  seed: number;
}

function hash3(x: number, y: number, z: number, seed: number): number {
  let h = (Math.imul(x, 73856093) ^ Math.imul(y, 19349663) ^ Math.imul(z, 83492791) ^ Math.imul(seed, 2654435761)) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, 0x5bd1e995) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

function shape(dims: Vec3, s: ShapeSpec): Uint8Array {
  const [nx, ny, nz] = dims;
  const out = new Uint8Array(nx * ny * nz);
  for (let z = 0, n = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++, n++) {
        const q = s.w[0] * (x - s.c[0]) ** 2 + s.w[1] * (y - s.c[1]) ** 2 + s.w[2] * (z - s.c[2]) ** 2 + (hash3(x, y, z, s.seed) % 64) * s.jitter;
        out[n] = q <= s.r ? 1 : 0;
      }
  return out;
}

const count = (a: Uint8Array) => a.reduce((n, v) => n + (v ? 1 : 0), 0);

describe('HD95 in mm, checked by hand: two boxes 12 mm apart on a 0.8 x 0.8 x 3 mm grid', () => {
  // A = x 0..2, y 0..2, z 0..1 and B = x 1..3, y 0..2, z 5..6 on a 4 x 3 x 7 grid, spacing 0.8 x 0.8 x 3 mm.
  // Both are 2 slices thick, so every voxel is a border voxel (each has a z-neighbour outside its box): 18 + 18.
  // The nearest B voxel to A voxel (x, y, z) is (max(x, 1), y, 5), at sqrt((0.8·[x = 0])² + (3·(5 - z))²) mm:
  //   x = 1, 2: z = 1 -> 12 mm (6 voxels), z = 0 -> 15 mm (6); x = 0: z = 1 -> sqrt(144.64) (3), z = 0 -> sqrt(225.64) (3).
  // B to A mirrors it (x = 3 takes the role of x = 0, z = 5 of z = 1). Pooled and sorted, the 36 distances are
  // 12 (x12), sqrt(144.64) (x6), 15 (x12), sqrt(225.64) (x6): indices 30..35 hold sqrt(225.64). numpy's 95th
  // percentile sits at index 0.95 · 35 = 33.25, between two copies of sqrt(225.64) = 15.0213... mm.
  // HD = sqrt(225.64); ASSD = the mean of either direction = (6·12 + 6·15 + 3·sqrt(144.64) + 3·sqrt(225.64)) / 18.
  // In voxels (spacing 1): the same walk gives 4 (x12), sqrt(17) (x6), 5 (x12), sqrt(26) (x6): HD95 = sqrt(26).
  const dims: Vec3 = [4, 3, 7];
  const a = box(dims, [0, 0, 0], [3, 3, 2]);
  const b = box(dims, [1, 0, 5], [4, 3, 7]);

  it('every voxel of both boxes is a border voxel', () => {
    expect(count(borderOf(a, dims))).toBe(18);
    expect(count(borderOf(b, dims))).toBe(18);
  });

  it('HD95, HD and ASSD in mm', () => {
    const s = surfaceMetrics(a, b, dims, [0.8, 0.8, 3])!;
    expect(s.hd95).toBeCloseTo(Math.sqrt(225.64), 12);
    expect(s.hd).toBeCloseTo(Math.sqrt(225.64), 12);
    expect(s.assd).toBeCloseTo((6 * 12 + 6 * 15 + 3 * Math.sqrt(144.64) + 3 * Math.sqrt(225.64)) / 18, 12);
    expect(hd95(b, a, dims, [0.8, 0.8, 3])).toBeCloseTo(Math.sqrt(225.64), 12); // symmetric
  });

  it('in voxels without a spacing (medpy default)', () => {
    expect(hd95(a, b, dims)).toBeCloseTo(Math.sqrt(26), 12);
  });

  it('the same boxes placed in a larger volume give the same distances (only the union box is used)', () => {
    const big: Vec3 = [30, 20, 40];
    const a2 = box(big, [10, 5, 17], [13, 8, 19]);
    const b2 = box(big, [11, 5, 22], [14, 8, 24]);
    expect(hd95(a2, b2, big, [0.8, 0.8, 3])).toBeCloseTo(Math.sqrt(225.64), 12);
  });

  it('an empty mask has no surface distance', () => {
    expect(surfaceMetrics(new Uint8Array(a.length), b, dims)).toBeUndefined();
    expect(hd95(a, new Uint8Array(a.length), dims)).toBeNaN();
  });
});

describe('border voxels: binary erosion with the 6-connected cross, outside the volume counts as background', () => {
  it('a 3 x 3 x 3 cube in the middle of 5^3 keeps only its centre; the whole volume keeps its inside', () => {
    const dims: Vec3 = [5, 5, 5];
    const cube = box(dims, [1, 1, 1], [4, 4, 4]);
    expect(count(borderOf(cube, dims))).toBe(26);
    expect(borderOf(cube, dims)[2 + 5 * (2 + 5 * 2)]).toBe(0);
    const full = new Uint8Array(125).fill(1);
    expect(count(borderOf(full, dims))).toBe(125 - 27); // the volume's edge is border (scipy's border_value = 0)
  });

  it('a voxel touching the background only diagonally is inside (connectivity 1)', () => {
    const dims: Vec3 = [5, 5, 5];
    const m = box(dims, [0, 0, 0], [5, 5, 5]);
    m[4 + 5 * (4 + 5 * 4)] = 0; // corner removed: (3,3,3) touches it only diagonally
    expect(borderOf(m, dims)[3 + 5 * (3 + 5 * 3)]).toBe(0);
  });
});

describe('squaredDistanceTransform', () => {
  it('equals brute force on seeded random grids with anisotropic spacing', () => {
    const rng = new Rng(20260517);
    for (let trial = 0; trial < 6; trial++) {
      const dims: Vec3 = [2 + rng.int(9), 1 + rng.int(9), 1 + rng.int(7)];
      const spacing: Vec3 = [0.3 + rng.next() * 3, 0.3 + rng.next() * 3, 0.3 + rng.next() * 3];
      const n = dims[0] * dims[1] * dims[2];
      const features = Uint8Array.from({ length: n }, () => (rng.next() < 0.04 ? 1 : 0));
      const d = squaredDistanceTransform(features, dims, spacing);
      const at = (i: number): Vec3 => [i % dims[0], Math.floor(i / dims[0]) % dims[1], Math.floor(i / (dims[0] * dims[1]))];
      for (let i = 0; i < n; i++) {
        let best = Infinity;
        const p = at(i);
        for (let j = 0; j < n; j++)
          if (features[j]) {
            const q = at(j);
            best = Math.min(best, ((p[0] - q[0]) * spacing[0]) ** 2 + ((p[1] - q[1]) * spacing[1]) ** 2 + ((p[2] - q[2]) * spacing[2]) ** 2);
          }
        if (best === Infinity) expect(d[i]).toBe(Infinity);
        else expect(Math.abs(d[i]! - best)).toBeLessThanOrEqual(1e-9 * Math.max(1, best));
      }
    }
  });
});

// Facts from Debian 12's python3-scipy 1.10.1 / python3-numpy 1.24.2 running medpy's definitions:
//   /usr/bin/python3 test/eval/volume-facts.py
// The shape specs below are copied from that script's CASES.
const FACTS: Record<string, { dims: Vec3; spacing: Vec3; result: ShapeSpec; reference: ShapeSpec; facts: Record<string, number> }> = {
  'offset-anisotropic': {
    dims: [40, 36, 20],
    spacing: [0.8, 0.8, 3.0],
    result: { w: [9, 9, 100], c: [18, 17, 9], r: 2200, jitter: 10, seed: 1 },
    reference: { w: [9, 9, 100], c: [22, 16, 11], r: 2600, jitter: 12, seed: 2 },
    facts: { resultVoxels: 3813, referenceVoxels: 4921, resultBorder: 1434, referenceBorder: 1762, dice: 0.600870162583009, hd95: 6.260990336999411, hd: 9.0, assd: 2.972606367165592, sumForward: 3899.9932666275877 },
  },
  'rough-overlap': {
    dims: [30, 44, 26],
    spacing: [1.25, 0.6, 2.0],
    result: { w: [16, 4, 9], c: [14, 22, 12], r: 1800, jitter: 40, seed: 7 },
    reference: { w: [25, 3, 8], c: [15, 20, 14], r: 2000, jitter: 35, seed: 8 },
    facts: { resultVoxels: 3812, referenceVoxels: 5488, resultBorder: 3740, referenceBorder: 5094, dice: 0.4135483870967742, hd95: 2.4, hd: 6.717328337962943, assd: 0.6995431203620572, sumForward: 2112.2359119983407 },
  },
  'touching-edges-voxels': {
    dims: [24, 20, 16],
    spacing: [1.0, 1.0, 1.0],
    result: { w: [1, 1, 1], c: [2, 3, 1], r: 150, jitter: 2, seed: 11 },
    reference: { w: [1, 1, 2], c: [20, 18, 14], r: 260, jitter: 3, seed: 12 },
    facts: { resultVoxels: 1140, referenceVoxels: 1623, resultBorder: 816, referenceBorder: 1101, dice: 0.0, hd95: 14.52583904633395, hd: 18.193405398660254, assd: 8.840262152123977, sumForward: 6808.050369359734 },
  },
  'plate-vs-blob': {
    dims: [32, 16, 28],
    spacing: [0.5, 2.0, 1.5],
    result: { w: [1, 400, 1], c: [16, 8, 14], r: 120, jitter: 1, seed: 21 },
    reference: { w: [4, 16, 4], c: [12, 7, 16], r: 700, jitter: 6, seed: 22 },
    facts: { resultVoxels: 277, referenceVoxels: 3053, resultBorder: 277, referenceBorder: 1431, dice: 0.14174174174174173, hd95: 12.0, hd: 14.0, assd: 3.8703485726736213, sumForward: 471.9296066277565 },
  },
};

describe('medpy definitions, facts from scipy (volume-facts.py)', () => {
  const close = (actual: number, expected: number) => expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(expected)));
  for (const [name, c] of Object.entries(FACTS)) {
    it(name, () => {
      const a = shape(c.dims, c.result);
      const b = shape(c.dims, c.reference);
      const f = c.facts;
      expect(count(a)).toBe(f.resultVoxels);
      expect(count(b)).toBe(f.referenceVoxels);
      const ab = borderOf(a, c.dims);
      const bb = borderOf(b, c.dims);
      expect(count(ab)).toBe(f.resultBorder);
      expect(count(bb)).toBe(f.referenceBorder);
      close(directedDistances(ab, bb, c.dims, c.spacing).reduce((s, v) => s + v, 0), f.sumForward!);
      const s = surfaceMetrics(a, b, c.dims, c.spacing)!;
      close(s.hd95, f.hd95!);
      close(s.hd, f.hd!);
      close(s.assd, f.assd!);
      // the same shapes as class 1 of a class-index volume, through scoreCase
      const scored = scoreCase({ id: name, pred: a, truth: b, dims: c.dims, spacing: c.spacing, classes: 2 }).classes[0]!;
      close(scored.dice, f.dice!);
      if (f.dice! > 0) close(scored.hd95!, f.hd95!);
    });
  }
});

describe('speed sanity (not a timing claim: it only has to be far from quadratic)', () => {
  it('HD95 of two blobs on a 256 x 256 x 100 grid', () => {
    const dims: Vec3 = [256, 256, 100];
    const ball = (c: Vec3, r: number) => {
      const m = new Uint8Array(dims[0] * dims[1] * dims[2]);
      for (let z = 0, n = 0; z < dims[2]; z++)
        for (let y = 0; y < dims[1]; y++) for (let x = 0; x < dims[0]; x++, n++) m[n] = ((x - c[0]) / r) ** 2 + ((y - c[1]) / r) ** 2 + ((z - c[2]) / (r / 2.5)) ** 2 <= 1 ? 1 : 0;
      return m;
    };
    const a = ball([120, 128, 50], 100);
    const b = ball([136, 124, 52], 95);
    const started = performance.now();
    const s = surfaceMetrics(a, b, dims, [0.7, 0.7, 2.5])!;
    const seconds = (performance.now() - started) / 1000;
    expect(s.hd95).toBeGreaterThan(0);
    expect(s.hd95).toBeLessThan(20);
    expect(seconds).toBeLessThan(30); // ~10^5 border voxels a side: a quadratic method would take hours
  });
});
