import type { ResolvedModelOptions } from '../models/model.ts';
import { decodeImage, resizeImage, resizePlane, type DecodedImage } from '../data/image.ts';
import type { ResizeMode } from '../data/resize.ts';
import { pixelsToTensor } from './normalize.ts';
import { logitsToMask, logitsToProbability } from './postprocess.ts';

/**
 * The two halves of `Segmenter.segment` around the network, for callers that run the network themselves
 * (the HTTP service batches several images into one run). Same operations, same order, same result.
 */

export interface PreparedImage {
  /** Normalised float32 CHW tensor [inChannels, size, size]. */
  input: Float32Array;
  /** Size of the decoded image (after EXIF rotation): the mask comes back at this size. */
  width: number;
  height: number;
}

/** How an image becomes the model input: the model's channels and size, and the resize (default 'cv2', as in training). */
export type InputOptions = Pick<ResolvedModelOptions, 'inChannels' | 'size'> & { resize?: ResizeMode };

/**
 * A decoded image resized to the model's input and normalised: float32 CHW [inChannels, size, size]. The resize is
 * the training one (src/data/samples.ts): cv2 INTER_LINEAR by default, sharp's antialiasing with `resize: 'antialias'`.
 */
export async function toModelInput(original: DecodedImage, options: InputOptions): Promise<Float32Array> {
  const { inChannels, size } = options;
  const resized = await resizeImage(original, size, 'linear', options.resize ?? 'cv2');
  return pixelsToTensor(resized.pixels, size, size, resized.channels, inChannels);
}

/** Decodes an encoded image (grey for 1-channel models) and prepares the model input; keeps only its size. */
export async function prepareImage(
  image: string | Uint8Array,
  options: InputOptions,
  label?: string,
): Promise<PreparedImage> {
  const original = await decodeImage(image, { grey: options.inChannels === 1, label });
  return { input: await toModelInput(original, options), width: original.width, height: original.height };
}

/** Logits [classes, size, size] of one image -> mask (0/255 binary, class index multi-class) and probability at width×height. */
export async function masksFromLogits(
  logits: Float32Array,
  options: Pick<ResolvedModelOptions, 'classes' | 'size'>,
  width: number,
  height: number,
): Promise<{ mask: Uint8Array; probability: Uint8Array }> {
  const { size, classes } = options;
  const plane = size * size;
  const probability = await resizePlane(logitsToProbability(logits, classes, plane), size, size, width, height, 'linear');
  const mask =
    classes === 1 ? probability.map((p) => (p >= 128 ? 255 : 0)) : await resizePlane(logitsToMask(logits, classes, plane), size, size, width, height, 'nearest');
  return { mask, probability };
}
