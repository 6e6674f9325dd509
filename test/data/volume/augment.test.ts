// TransUNet's slice augmentation (src/data/volume/augment.ts) against numpy and scipy, computed once with Debian's
// python3-numpy / python3-scipy:
//   /usr/bin/python3 -c "import numpy as np; a=np.arange(36).reshape(6,6); print(np.flip(np.rot90(a,k),axis).ravel().tolist())"
//   /usr/bin/python3 -c "import numpy as np; from scipy import ndimage; b=np.arange(1,82).reshape(9,9).astype(float);
//                        print(ndimage.rotate(b,angle,order=0,reshape=False).astype(int).ravel().tolist())"
import { describe, expect, it } from 'vitest';
import { augmentSlice, rotateNearest, rotFlip } from '../../../src/data/volume/augment.ts';
import type { Slice } from '../../../src/data/volume/slices.ts';
import { Rng } from '../../../src/util/rng.ts';

const ramp = (n: number, from: number): Slice => ({
  id: 'c:0',
  // two channels: the ramp and its negative, to check every channel moves with the label
  image: Float32Array.from({ length: 2 * n * n }, (_, i) => (i < n * n ? from + i : -(from + i - n * n))),
  label: Uint8Array.from({ length: n * n }, (_, i) => from + i),
});

const ROT_FLIP: [number, 0 | 1, number[]][] = [
  [2, 0, [5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 17, 16, 15, 14, 13, 12, 23, 22, 21, 20, 19, 18, 29, 28, 27, 26, 25, 24, 35, 34, 33, 32, 31, 30]],
  [1, 1, [35, 29, 23, 17, 11, 5, 34, 28, 22, 16, 10, 4, 33, 27, 21, 15, 9, 3, 32, 26, 20, 14, 8, 2, 31, 25, 19, 13, 7, 1, 30, 24, 18, 12, 6, 0]],
  [1, 0, [0, 6, 12, 18, 24, 30, 1, 7, 13, 19, 25, 31, 2, 8, 14, 20, 26, 32, 3, 9, 15, 21, 27, 33, 4, 10, 16, 22, 28, 34, 5, 11, 17, 23, 29, 35]],
  [0, 1, [5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 17, 16, 15, 14, 13, 12, 23, 22, 21, 20, 19, 18, 29, 28, 27, 26, 25, 24, 35, 34, 33, 32, 31, 30]],
];

const ROTATE: [number, number[]][] = [
  [15, [0, 0, 0, 0, 6, 7, 17, 18, 0, 2, 3, 13, 14, 15, 16, 26, 27, 0, 11, 12, 22, 23, 24, 24, 34, 35, 0, 19, 20, 30, 31, 32, 33, 43, 44, 0, 28, 29, 30, 40, 41, 42, 52, 53, 54, 0, 38, 39, 49, 50, 51, 52, 62, 63, 0, 47, 48, 58, 58, 59, 60, 70, 71, 0, 55, 56, 66, 67, 68, 69, 79, 80, 0, 64, 65, 75, 76, 0, 0, 0, 0]],
  [-7, [0, 2, 3, 4, 5, 0, 0, 0, 0, 0, 11, 12, 13, 14, 15, 16, 17, 18, 0, 20, 21, 22, 23, 24, 25, 26, 27, 0, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 0, 55, 56, 57, 58, 59, 60, 61, 62, 0, 64, 65, 66, 67, 68, 69, 70, 71, 0, 0, 0, 0, 0, 77, 78, 79, 80, 0]],
];

describe('volume slice augmentation (TransUNet RandomGenerator)', () => {
  it.each(ROT_FLIP)('rot90 k=%i then flip axis %i equals numpy', (k, axis, expected) => {
    const out = rotFlip(ramp(6, 0), 6, k, axis);
    expect([...out.label]).toEqual(expected);
    expect([...out.image.subarray(0, 36)]).toEqual(expected);
    expect([...out.image.subarray(36)]).toEqual(expected.map((v) => -v));
  });

  it.each(ROTATE)('rotation by %i° (nearest, zero outside) equals scipy.ndimage.rotate(order=0, reshape=False)', (angle, expected) => {
    const out = rotateNearest(ramp(9, 1), 9, angle);
    expect([...out.label]).toEqual(expected);
    expect([...out.image.subarray(0, 81)]).toEqual(expected);
  });

  it('draws rot/flip half the time, a small rotation a quarter, nothing a quarter', () => {
    const rng = new Rng(3);
    const s = ramp(8, 0);
    let same = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) if (augmentSlice(s, 8, rng) === s) same++;
    expect(same / n).toBeGreaterThan(0.22);
    expect(same / n).toBeLessThan(0.28);
  });
});
