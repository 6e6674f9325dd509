import type { VolumeModelMeta } from '../data/volume/model-meta.ts';
import { volumeMetadata } from '../data/volume/model-meta.ts';
import type { SegmentationModel } from '../models/model.ts';
import { NodeSession } from '../runtime/session.ts';

export interface ExportOptions {
  /** A volume model's slicing and intensity, kept in the ONNX metadata_props as `volume` (see volumeMetaFrom). */
  volume?: VolumeModelMeta;
  /** Further metadata_props entries. */
  metadata?: Record<string, string>;
}

/**
 * The model's inference graph as standard ONNX bytes (input `input` [N,C,H,W] float32, output `logits`), checked by
 * loading it in ONNX Runtime before it is returned.
 *
 * @example
 * const model = await loadModel({ weights: 'best.safetensors' });
 * await writeFile('model.onnx', await exportOnnx(model));
 */
export async function exportOnnx(model: SegmentationModel, o: ExportOptions = {}): Promise<Uint8Array> {
  const bytes = model.toOnnx({ metadata: { ...o.metadata, ...(o.volume ? volumeMetadata(o.volume) : {}) } });
  const session = await NodeSession.create(bytes).catch((e: Error) => {
    throw new Error(`exported graph does not load in ONNX Runtime: ${e.message}`);
  });
  await session.release();
  return bytes;
}
