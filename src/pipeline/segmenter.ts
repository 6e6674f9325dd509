import type { SegmentationModel } from '../models/model.ts';
import { decodeImage, resizeImage, resizePlane, type DecodedImage } from '../data/image.ts';
import { NodeSession } from '../runtime/session.ts';
import type { InferenceBackend, SessionOptions } from '../runtime/types.ts';
import { pixelsToTensor } from './normalize.ts';
import { logitsToMask, logitsToProbability } from './postprocess.ts';

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
    const { inChannels, size, classes } = this.model.options;
    const original = await decodeImage(image, { grey: inChannels === 1 });
    const resized = await resizeImage(original, size, 'linear');
    const input = pixelsToTensor(resized.pixels, size, size, resized.channels, inChannels);
    const start = performance.now();
    const logits = await this.logits(input, 1);
    const inferenceMs = performance.now() - start;
    const plane = size * size;
    const probability = await resizePlane(logitsToProbability(logits, classes, plane), size, size, original.width, original.height, 'linear');
    const mask =
      classes === 1
        ? probability.map((p) => (p >= 128 ? 255 : 0))
        : await resizePlane(logitsToMask(logits, classes, plane), size, size, original.width, original.height, 'nearest');
    return { mask, probability, width: original.width, height: original.height, inferenceMs, image: original };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
