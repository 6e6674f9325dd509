/**
 * What a model trained on volumes needs to segment a new volume the way it was trained: the intensity preset, the
 * slice axis, the slice context (2.5-D), and the label value and name of every class (class k of the softmax is
 * label value `classValues[k]`; class 0 is background). The trainer writes it into the weights file's metadata
 * under the key `volume` (one JSON string); predict, eval, serve and the browser read it back.
 *
 * @example
 *   await saveWeights(model, 'best.safetensors', volumeMetadata(meta));
 *   const meta = volumeMetaFrom((await readSafetensorsFile(path)).metadata, path); // undefined for a 2-D model
 */
import { UserError } from '../../errors.ts';
import type { Intensity } from './intensity.ts';
import { classValues as valuesOf, SLICE_AXES, type SliceAxis } from './slices.ts';

export interface VolumeModelMeta {
  intensity: Intensity;
  axis: SliceAxis;
  /** Neighbouring slices on each side as extra input channels: 0 or 1. */
  context: 0 | 1;
  /** Label value of each class, background (0) first. */
  classValues: number[];
  /** Name of each class (dataset.json's labels; 'background' for class 0). */
  classNames: string[];
}

export const VOLUME_META_KEY = 'volume';

/** The metadata entry to add to a weights file. */
export function volumeMetadata(meta: VolumeModelMeta): Record<string, string> {
  return { [VOLUME_META_KEY]: JSON.stringify(meta) };
}

export type VolumeMetaResult = { meta: VolumeModelMeta; problem?: undefined } | { meta?: undefined; problem: string };

/** Checks a `volume` metadata string; `problem` names the first field that is not usable. */
export function parseVolumeMeta(text: string): VolumeMetaResult {
  let m: Partial<VolumeModelMeta>;
  try {
    m = JSON.parse(text) as Partial<VolumeModelMeta>;
  } catch {
    return { problem: 'not JSON' };
  }
  const i = m.intensity as Intensity | undefined;
  if (!i || !(i.kind === 'ct' || i.kind === 'mri' || (i.kind === 'window' && Number.isFinite(i.level) && i.width > 0))) return { problem: 'intensity' };
  if (!SLICE_AXES.includes(m.axis as SliceAxis)) return { problem: 'axis' };
  if (m.context !== 0 && m.context !== 1) return { problem: 'context' };
  const values = m.classValues;
  if (!Array.isArray(values) || values.length < 2 || values.length > 256 || !values.every((v) => Number.isInteger(v)) || new Set(values).size !== values.length)
    return { problem: 'classValues' };
  const names = m.classNames;
  if (!Array.isArray(names) || names.length !== values.length || !names.every((n) => typeof n === 'string')) return { problem: 'classNames' };
  return { meta: m as VolumeModelMeta };
}

/** The volume metadata of a weights file, undefined when it has none (a 2-D model); a malformed entry is a UserError. */
export function volumeMetaFrom(metadata: Record<string, string>, source: string): VolumeModelMeta | undefined {
  const text = metadata[VOLUME_META_KEY];
  if (text === undefined) return undefined;
  const r = parseVolumeMeta(text);
  if (r.problem !== undefined) throw new UserError(`${source}: metadata "${VOLUME_META_KEY}" is not usable (${r.problem})`);
  return r.meta;
}

/** Class values and names from dataset.json's labels (or 0..classes-1 without one), background first. */
export function classTable(labels: Map<number, string> | undefined, classes: number): { classValues: number[]; classNames: string[] } {
  if (!labels) return { classValues: Array.from({ length: classes }, (_, k) => k), classNames: Array.from({ length: classes }, (_, k) => (k === 0 ? 'background' : `class ${k}`)) };
  const classValues = valuesOf(labels)!;
  return { classValues, classNames: classValues.map((v) => labels.get(v) ?? (v === 0 ? 'background' : `label ${v}`)) };
}
