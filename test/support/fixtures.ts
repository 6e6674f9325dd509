import { existsSync, readFileSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestFunction } from 'vitest';
import { createModel, type SegmentationModel } from '../../src/models/model.ts';
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

/** A fixture tensor as a runtime Tensor. */
export const asTensor = (t: FixtureTensor): { data: Float32Array; dims: readonly number[] } => ({ data: t.data, dims: t.shape });

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

/**
 * MobileUtr (or the baseline `name`: 'unext', 'cmunext') at `size` with the fixture weights (`<name>_seed0.weights`:
 * every parameter and buffer under its state_dict key, which is our weight name).
 */
export function fixtureModel(size: number, name = 'mobileutr'): SegmentationModel {
  const model = createModel(name, { size });
  for (const [key, t] of readBundle(`${name}_seed0.weights`).tensors) if (model.weights.has(key)) model.weights.set(key, t.data);
  return model;
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

/** One tensor's error: relative (max-norm, the README metric) or, for `absolute` tensors, max |a − b|. */
export interface TensorError {
  name: string;
  err: number;
  absolute: boolean;
}

/**
 * Per-tensor errors of `actual(name)` against `expected(name)`: {@link relativeError}, or {@link maxAbsDiff} for
 * the names in `absolute` (e.g. {@link ZERO_GRAD_BIASES} for gradients, whose fixture values are noise).
 */
export function tensorErrors(
  names: readonly string[],
  actual: (name: string) => ArrayLike<number>,
  expected: (name: string) => Float32Array,
  absolute: readonly string[] = [],
): TensorError[] {
  return names.map((name) => {
    const abs = absolute.includes(name);
    const a = Float32Array.from(actual(name));
    return { name, absolute: abs, err: abs ? maxAbsDiff(a, expected(name)) : relativeError(a, expected(name)) };
  });
}

/** The tensors above their tolerance: `rel` for relative errors, `abs` for absolute ones. */
export const exceeding = (errs: readonly TensorError[], rel: number, abs = rel): TensorError[] =>
  errs.filter((e) => !(e.err <= (e.absolute ? abs : rel)));

/**
 * One log line: the worst relative errors, their median and the worst absolute one; every tensor with
 * PARITY_VERBOSE=1.
 */
export function summarizeErrors(title: string, errs: readonly TensorError[], worst = 5): string {
  const rel = errs.filter((e) => !e.absolute).sort((a, b) => b.err - a.err);
  const abs = errs.filter((e) => e.absolute).sort((a, b) => b.err - a.err);
  const fmt = (e: TensorError) => `${e.name} ${e.err.toExponential(2)}`;
  let line = `${title} (${errs.length} tensors): worst relative ${rel.slice(0, worst).map(fmt).join(', ')}; median ${rel[rel.length >> 1]?.err.toExponential(2)}`;
  if (abs.length > 0) line += `; absolute (${abs.length}) worst |diff| ${fmt(abs[0]!)}`;
  if (process.env.PARITY_VERBOSE) line += errs.map((e) => `\n  ${e.err.toExponential(2)} ${e.absolute ? 'abs' : 'rel'} ${e.name}`).join('');
  return line;
}
