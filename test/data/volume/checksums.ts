import { createHash } from 'node:crypto';
import type { Volume } from '../../../src/data/volume/index.ts';

/** Sum, sum of squares (float64) and sha256 of the float32 voxels (little-endian hosts: x86, arm64), as the reference facts record them. */
export function checksums(v: Volume): { sum: number; sumSq: number; sha256: string } {
  let sum = 0;
  let sumSq = 0;
  for (const x of v.data) {
    sum += x;
    sumSq += x * x;
  }
  const le = new Float32Array(v.data);
  return { sum, sumSq, sha256: createHash('sha256').update(new Uint8Array(le.buffer)).digest('hex') };
}
