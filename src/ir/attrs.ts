// Reading ONNX attributes and axes: the one set of helpers that shape rules, gradient rules and graph passes share.
import type { Attributes, TensorData } from './types.ts';

/** Anything that carries ONNX attributes: a graph node, a shape-rule context. */
export interface HasAttributes {
  readonly attrs: Attributes;
}

/** An `int` attribute, or `fallback` when it is absent (or of another kind). */
export function intAttr(node: HasAttributes, name: string, fallback: number): number {
  const a = node.attrs[name];
  return a?.kind === 'int' ? a.value : fallback;
}

/** A `float` attribute, or `fallback`. */
export function floatAttr(node: HasAttributes, name: string, fallback: number): number {
  const a = node.attrs[name];
  return a?.kind === 'float' ? a.value : fallback;
}

/** An `ints` attribute as a fresh array (callers may modify it), or a copy of `fallback`. */
export function intsAttr(node: HasAttributes, name: string, fallback: readonly number[]): number[] {
  const a = node.attrs[name];
  return [...(a?.kind === 'ints' ? a.value : fallback)];
}

/** A `string` attribute, or `fallback`. */
export function stringAttr(node: HasAttributes, name: string, fallback: string): string {
  const a = node.attrs[name];
  return a?.kind === 'string' ? a.value : fallback;
}

/** An ONNX axis in [-rank, rank) as an index in [0, rank). */
export function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** The axes a reduction over `axes` covers, normalized; ONNX reads an empty list as every axis. */
export function reducedAxes(axes: readonly number[], rank: number): number[] {
  return axes.length === 0 ? [...Array(rank).keys()] : axes.map((a) => normalizeAxis(a, rank));
}

/** A Slice start or end on a dim of size n, clamped as ONNX does: to [0, n] for a positive step, [-1, n-1] for a negative one. */
export function clampSliceIndex(index: number, n: number, step: number): number {
  const [lo, hi] = step > 0 ? [0, n] : [-1, n - 1];
  return Math.min(Math.max(index < 0 ? index + n : index, lo), hi);
}

/** The values of a constant int64 input (shapes, axes, pads); `what` names the input in the error. */
export function int64Values(data: TensorData | undefined, what: string): number[] {
  if (!(data instanceof BigInt64Array)) throw new Error(`${what} must be a constant int64 tensor`);
  return Array.from(data, Number);
}
