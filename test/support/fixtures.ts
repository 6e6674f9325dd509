import { existsSync, readFileSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestFunction } from 'vitest';
import { describeWith, itWith, type RequiredData } from './required-data.ts';

/**
 * The PyTorch fixtures: ../shared/fixtures next to the repo, or the folder in MOBILEUTR_FIXTURES.
 * Missing fixtures fail every parity suite under CI=true; elsewhere the suites report themselves as skipped.
 */
export const FIXTURES = process.env.MOBILEUTR_FIXTURES
  ? resolve(process.env.MOBILEUTR_FIXTURES) + sep
  : fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));
export const hasFixtures = existsSync(`${FIXTURES}mobileutr_seed0.weights.json`);

const MISSING = `PyTorch fixtures not found at ${FIXTURES} (../shared/fixtures, or set MOBILEUTR_FIXTURES)`;
const fixtures: RequiredData = {
  present: hasFixtures,
  what: 'the PyTorch fixtures',
  missing: MISSING,
  ciReason: 'a parity suite must not pass without its comparison',
};

/** A suite that needs the fixtures (see test/support/required-data.ts for what happens when they are missing). */
export const describeWithFixtures = (name: string, fn: () => void): void => describeWith(fixtures, name, fn);

/** One test that needs the fixtures, with the same rules as {@link describeWithFixtures}. */
export const itWithFixtures = (name: string, fn: TestFunction, timeout?: number): void => itWith(fixtures, name, fn, timeout);

export interface FixtureTensor {
  shape: number[];
  data: Float32Array;
}

/** Reads an f32le-bundle-v1 (NAME.json + NAME.bin) into tensors by name. */
export function readBundle(name: string): { tensors: Map<string, FixtureTensor>; meta: Record<string, unknown> } {
  if (!existsSync(`${FIXTURES}${name}.json`)) throw new Error(`fixture bundle ${name} not found: ${MISSING}`);
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

/** max |a - b|. */
export function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let m = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** ‖a − b‖₂ / ‖b‖₂ (in float64), e.g. of an update or an optimizer state tensor. */
export function l2RelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let err = 0;
  let ref = 0;
  for (let i = 0; i < expected.length; i++) {
    err += (actual[i]! - expected[i]!) ** 2;
    ref += expected[i]! ** 2;
  }
  return Number.isNaN(err) ? Infinity : Math.sqrt(err) / (Math.sqrt(ref) || 1);
}

/**
 * MobileUtr conv biases that feed straight into a train-mode BatchNorm: their exact gradient is 0 and the
 * fixtures' values are rounding noise (|g| ≤ 3.1e-8), so they are compared with an absolute tolerance (README).
 */
export const ZERO_GRAD_BIASES: readonly string[] = [
  'patch_embeddings.stem.0', 'patch_embeddings.layer1.up.0', 'patch_embeddings.layer2.up.0', 'patch_embeddings.layer3.up.0',
  'expend_dims.conv.0', 'expend_dims.conv.3', 'reduce_dims.conv.0', 'reduce_dims.conv.3', 'Up_conv4.conv.0', 'Up_conv4.conv.3',
  'Up_conv3.conv.0', 'Up_conv3.conv.3', 'Up_conv2.conv.0', 'Up_conv2.conv.3', 'Up3.up.1', 'Up2.up.1', 'Up1.up.1',
].map((m) => `${m}.bias`);
