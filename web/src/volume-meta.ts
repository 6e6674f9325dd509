// The volume metadata of an exported model: the `volume` entry of the ONNX metadata_props, the same JSON string
// the trainer writes into the weights file (src/data/volume/model-meta.ts: intensity, axis, context, classValues,
// classNames). That module imports the Node-only slicing code, so its check is repeated here for the page.
import type { Intensity } from '../../src/data/volume/intensity.ts';
import type { VolumeModelMeta } from '../../src/data/volume/model-meta.ts';

export const VOLUME_META_KEY = 'volume';
const AXES = ['axial', 'coronal', 'sagittal'];

export type VolumeMetaResult = { meta: VolumeModelMeta; problem?: undefined } | { meta?: undefined; problem?: string };

/** The model's volume metadata; `problem` says why an entry that is present cannot be used; neither when absent. */
export function volumeMetaOf(metadata: Record<string, string>): VolumeMetaResult {
  const text = metadata[VOLUME_META_KEY];
  if (text === undefined) return {};
  let m: Partial<VolumeModelMeta>;
  try {
    m = JSON.parse(text) as Partial<VolumeModelMeta>;
  } catch {
    return { problem: 'not JSON' };
  }
  const i = m.intensity as Intensity | undefined;
  if (!i || !(i.kind === 'ct' || i.kind === 'mri' || (i.kind === 'window' && Number.isFinite(i.level) && i.width > 0))) return { problem: 'intensity' };
  if (!AXES.includes(m.axis as string)) return { problem: 'axis' };
  if (m.context !== 0 && m.context !== 1) return { problem: 'context' };
  const values = m.classValues;
  if (!Array.isArray(values) || values.length < 2 || values.length > 256 || !values.every((v) => Number.isInteger(v)) || new Set(values).size !== values.length)
    return { problem: 'classValues' };
  const names = m.classNames;
  if (!Array.isArray(names) || names.length !== values.length || !names.every((n) => typeof n === 'string')) return { problem: 'classNames' };
  return { meta: m as VolumeModelMeta };
}

/** How an intensity preset reads in the page. */
export function intensityLabel(i: Intensity): string {
  if (i.kind === 'ct') return 'CT: HU clipped to −125…275';
  if (i.kind === 'mri') return 'MRI: 0.5–99.5 percentile clip, z-score';
  return `window ${i.level}/${i.width}`;
}
