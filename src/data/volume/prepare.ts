/**
 * Volumes as cases ready to slice (see slices.ts): put in canonical RAS+ order, each channel clipped by the
 * intensity preset and stored as 8 bits, the label map as class indices. `caseFromVolumes` works on volumes in
 * memory (prediction, the HTTP service, the browser); `prepareCase` reads a dataset case's files and checks grids.
 */
import { UserError } from '../../errors.ts';
import { gridMismatch } from './check.ts';
import type { VolumeCase } from './dataset.ts';
import { readVolume } from './index.ts';
import { intensityMap, quantize, type Intensity } from './intensity.ts';
import { toCanonical, type Reorientation } from './orientation.ts';
import { classValues, toClasses, type PreparedCase } from './slices.ts';
import type { Volume } from './volume.ts';

export interface PrepareOptions {
  intensity: Intensity;
  /** dataset.json's labels (value -> name); class k is the k-th value in increasing order. Without it, values are the classes. */
  labels?: Map<number, string>;
  /** Without `labels`: the classes are the values 0..classes-1 (default 256). */
  classes?: number;
  volumeIndex?: number;
}

/**
 * The channels of one case (same grid, checked by the caller) as a prepared case, with the reorientation that maps
 * results back to the source's voxel order; `label` (already checked against the grid) becomes class indices.
 */
export function caseFromVolumes(
  id: string,
  volumes: readonly Volume[],
  intensity: Intensity,
  label?: { volume: Volume; values: number[] },
): { prepared: PreparedCase; reorientation: Reorientation; affine: Volume['affine'] } {
  const canonical = volumes.map((v) => toCanonical(v));
  const maps = canonical.map((c) => intensityMap(c.volume.data, intensity));
  const channels = canonical.map((c, i) => quantize(c.volume.data, maps[i]!));
  const labels = label ? toClasses(toCanonical(label.volume).volume.data, label.values, label.volume.source) : undefined;
  const { dims, spacing, affine } = canonical[0]!.volume;
  const bytes = channels.reduce((n, ch) => n + ch.byteLength, labels?.byteLength ?? 0);
  return { prepared: { id, dims, spacing, channels, maps, labels, bytes }, reorientation: canonical[0]!.reorientation, affine };
}

/** Reads a case's channels and label, checks their grids, and stores them canonical and compact. */
export async function prepareCase(c: VolumeCase, o: PrepareOptions): Promise<PreparedCase> {
  const volumes = [];
  for (const path of c.images) volumes.push(await readVolume(path, { volumeIndex: o.volumeIndex }));
  const first = volumes[0]!;
  volumes.slice(1).forEach((v, i) => {
    const problem = gridMismatch(v, first, 'channel');
    if (problem) throw new UserError(`${c.images[i + 1]}: ${problem}`);
  });
  let label: { volume: Volume; values: number[] } | undefined;
  if (c.label) {
    const raw = await readVolume(c.label, { volumeIndex: o.volumeIndex });
    const problem = gridMismatch(raw, first, 'label');
    if (problem) throw new UserError(`${c.label}: ${problem}`);
    label = { volume: { ...raw, source: c.label }, values: classValues(o.labels) ?? Array.from({ length: o.classes ?? 256 }, (_, v) => v) };
  }
  return caseFromVolumes(c.id, volumes, o.intensity, label).prepared;
}
