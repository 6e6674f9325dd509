// The volume metadata of an exported model: the `volume` entry of the ONNX metadata_props, the same JSON string
// the trainer writes into the weights file (src/data/volume/model-meta.ts: intensity, axis, context, classValues,
// classNames), checked by the same code.
import type { Intensity } from '../data/volume/intensity.ts';
import { parseVolumeMeta, VOLUME_META_KEY, type VolumeMetaResult } from '../data/volume/model-meta.ts';

/** The model's volume metadata; `problem` says why an entry that is present cannot be used; neither when absent. */
export function volumeMetaOf(metadata: Record<string, string>): VolumeMetaResult | Record<string, never> {
  const text = metadata[VOLUME_META_KEY];
  return text === undefined ? {} : parseVolumeMeta(text);
}

/** How an intensity preset reads in the page. */
export function intensityLabel(i: Intensity): string {
  if (i.kind === 'ct') return 'CT: HU clipped to −125…275';
  if (i.kind === 'mri') return 'MRI: 0.5–99.5 percentile clip, z-score';
  return `window ${i.level}/${i.width}`;
}
