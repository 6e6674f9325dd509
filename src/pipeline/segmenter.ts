import type { SegmentationModel } from '../models/model.ts';
import { decodeImage, type DecodedImage } from '../data/image.ts';
import { masksFromLogits, toModelInput } from './stages.ts';
import { NodeSession } from '../runtime/session.ts';
import type { InferenceBackend, SessionOptions } from '../runtime/types.ts';

export interface Segmentation {
  /** Label map at the image's original size: 0/255 for binary models, class index for multi-class. */
  mask: Uint8Array;
  /** Foreground probability (0-255) at the original size. */
  probability: Uint8Array;
  width: number;
  height: number;
  /** Inference time of the network alone, in milliseconds. */
  inferenceMs: number;
  /** The decoded input image at its original size (grey for 1-channel models). */
  image: DecodedImage;
}

/**
 * Runs a model on images with ONNX Runtime: decode -> resize -> normalise -> logits -> mask at the original size.
 *
 * @example
 * const seg = await Segmenter.create(model);
 * const { mask, width, height } = await seg.segment('scan.png');
 */
export class Segmenter {
  private constructor(
    readonly model: SegmentationModel,
    private readonly session: InferenceBackend,
  ) {}

  static async create(model: SegmentationModel, options: SessionOptions = {}): Promise<Segmenter> {
    return new Segmenter(model, await NodeSession.create(model.toOnnx(), options));
  }

  /** Logits [n, classes, size, size] for a normalised batch [n, inChannels, size, size]. */
  async logits(batch: Float32Array, n: number): Promise<Float32Array> {
    const { inChannels, size } = this.model.options;
    const out = await this.session.run({ input: { data: batch, dims: [n, inChannels, size, size] } }, ['logits']);
    return out.logits!.data;
  }

  /** Segments one encoded image (path or bytes). */
  async segment(image: string | Uint8Array): Promise<Segmentation> {
    const o = this.model.options;
    const original = await decodeImage(image, { grey: o.inChannels === 1 });
    const input = await toModelInput(original, o);
    const start = performance.now();
    const logits = await this.logits(input, 1);
    const inferenceMs = performance.now() - start;
    const { mask, probability } = await masksFromLogits(logits, o, original.width, original.height);
    return { mask, probability, width: original.width, height: original.height, inferenceMs, image: original };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
