import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** ../shared/fixtures next to the repo (tests skip when it is absent). */
export const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));
export const hasFixtures = existsSync(`${FIXTURES}mobileutr_seed0.weights.json`);

export interface FixtureTensor {
  shape: number[];
  data: Float32Array;
}

/** Reads an f32le-bundle-v1 (NAME.json + NAME.bin) into tensors by name. */
export function readBundle(name: string): { tensors: Map<string, FixtureTensor>; meta: Record<string, unknown> } {
  const index = JSON.parse(readFileSync(`${FIXTURES}${name}.json`, 'utf8')) as {
    meta: Record<string, unknown>;
    tensors: { name: string; shape: number[]; offset: number; nbytes: number }[];
  };
  const bin = readFileSync(`${FIXTURES}${name}.bin`);
  const tensors = new Map<string, FixtureTensor>();
  for (const t of index.tensors) {
    const data = new Float32Array(bin.buffer.slice(bin.byteOffset + t.offset, bin.byteOffset + t.offset + t.nbytes));
    tensors.set(t.name, { shape: t.shape, data });
  }
  return { tensors, meta: index.meta };
}

/** max |a - b| / max |b|: the fixtures' README metric. */
export function relativeError(actual: Float32Array, expected: Float32Array): number {
  if (actual.length !== expected.length) return Infinity;
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return Number.isNaN(maxErr) ? Infinity : maxErr / (maxRef || 1);
}
