// The browser twin of src/pipeline/segmenter.ts: decode -> resize to the model size -> the same normalisation
// (pixelsToTensor) -> logits -> the same postprocessing -> mask at the original size. Decoding and resizing use the
// browser's canvas instead of sharp, so images that need a resize can differ from Node's masks near the boundary;
// an image already at the model size goes through identical arithmetic.
import { pixelsToTensor } from '../pipeline/normalize.ts';
import { logitsToMask, logitsToProbability } from '../pipeline/postprocess.ts';
import type { InferenceBackend } from '../runtime/types.ts';
import type { ModelInfo } from './onnx-info.ts';

/** Decoded image: RGBA pixels at the original size. */
export interface RgbaImage {
  pixels: Uint8ClampedArray;
  width: number;
  height: number;
}

export interface BrowserSegmentation {
  /** Label map at the original size: 0/255 for binary models, class index for multi-class (as Segmenter.segment). */
  mask: Uint8Array;
  /** Foreground probability (0-255) at the original size. */
  probability: Uint8Array;
  width: number;
  height: number;
  /** Raw logits [classes, size, size]. */
  logits: Float32Array;
  /** Network time alone (session.run), ms. */
  inferenceMs: number;
  /** Decode-to-mask time, ms. */
  totalMs: number;
  /** Whether the image was resized to the model size (then Node parity is approximate). */
  resized: boolean;
}

export const MAX_IMAGE_SIDE = 8192;

export class ImageError extends Error {}

function canvas2d(width: number, height: number): OffscreenCanvasRenderingContext2D {
  const ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('2D canvas is not available');
  return ctx;
}

/** Decodes PNG/JPEG/... with the browser (EXIF orientation applied) to RGBA; alpha is composited on nothing (ignored). */
export async function decodeImage(file: Blob): Promise<RgbaImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image', premultiplyAlpha: 'none' });
  } catch {
    throw new ImageError('not a readable image (PNG or JPEG expected)');
  }
  try {
    const { width, height } = bitmap;
    if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) throw new ImageError(`image is ${width}x${height}; at most ${MAX_IMAGE_SIDE} px a side`);
    const ctx = canvas2d(width, height);
    ctx.drawImage(bitmap, 0, 0);
    return { pixels: ctx.getImageData(0, 0, width, height).data, width, height };
  } finally {
    bitmap.close();
  }
}

/**
 * Resizes RGBA pixels on a canvas with bilinear filtering ('medium' quality: bilinear, with mipmaps when shrinking
 * so that large images are not aliased), or nearest-neighbour for label maps.
 */
export function resizeRgba(img: RgbaImage, width: number, height: number, kernel: 'linear' | 'nearest'): RgbaImage {
  if (img.width === width && img.height === height) return img;
  const src = canvas2d(img.width, img.height);
  src.putImageData(new ImageData(new Uint8ClampedArray(img.pixels), img.width, img.height), 0, 0);
  const dst = canvas2d(width, height);
  dst.imageSmoothingEnabled = kernel === 'linear';
  dst.imageSmoothingQuality = 'medium';
  dst.drawImage(src.canvas, 0, 0, width, height);
  return { pixels: dst.getImageData(0, 0, width, height).data, width, height };
}

function planeToRgba(plane: Uint8Array, width: number, height: number): RgbaImage {
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < plane.length; i++) {
    const v = plane[i]!;
    pixels[i * 4] = v;
    pixels[i * 4 + 1] = v;
    pixels[i * 4 + 2] = v;
    pixels[i * 4 + 3] = 255;
  }
  return { pixels, width, height };
}

function resizePlane(plane: Uint8Array, size: number, width: number, height: number, kernel: 'linear' | 'nearest'): Uint8Array {
  if (size === width && size === height) return plane;
  const rgba = resizeRgba(planeToRgba(plane, size, size), width, height, kernel).pixels;
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = rgba[i * 4]!;
  return out;
}

/** True when every pixel has R = G = B (a grey image decoded to RGBA). */
function isGrey(pixels: Uint8ClampedArray): boolean {
  for (let p = 0; p < pixels.length; p += 4) if (pixels[p] !== pixels[p + 1] || pixels[p] !== pixels[p + 2]) return false;
  return true;
}

/** Model input [1, inChannels, size, size] for an RGBA image, normalised exactly as on Node (pixelsToTensor). */
export function imageToTensor(img: RgbaImage, info: Pick<ModelInfo, 'size' | 'inChannels'>): { tensor: Float32Array; resized: boolean } {
  const { size, inChannels } = info;
  const resized = resizeRgba(img, size, size, 'linear');
  const rgba = new Uint8Array(resized.pixels.buffer, resized.pixels.byteOffset, resized.pixels.byteLength);
  if (inChannels === 1 && isGrey(resized.pixels)) {
    // a grey image: hand over the grey plane itself, as sharp does on Node
    const plane = new Uint8Array(size * size);
    for (let i = 0; i < plane.length; i++) plane[i] = rgba[i * 4]!;
    return { tensor: pixelsToTensor(plane, size, size, 1, 1), resized: resized !== img };
  }
  return { tensor: pixelsToTensor(rgba, size, size, 4, inChannels), resized: resized !== img };
}

/** Runs the model on a decoded image; the mask follows Segmenter.segment (threshold of the 8-bit probability). */
export async function segmentImage(session: InferenceBackend, info: ModelInfo, img: RgbaImage): Promise<BrowserSegmentation> {
  const t0 = performance.now();
  const { size, inChannels, classes } = info;
  const { tensor, resized } = imageToTensor(img, info);
  const start = performance.now();
  const out = await session.run({ [info.inputName]: { data: tensor, dims: [1, inChannels, size, size] } }, [info.outputName]);
  const inferenceMs = performance.now() - start;
  const logits = out[info.outputName]?.data;
  if (!logits || logits.length !== classes * size * size) throw new Error(`the model returned ${logits?.length ?? 0} values, expected ${classes}x${size}x${size}`);
  const plane = size * size;
  const { width, height } = img;
  const probability = resizePlane(logitsToProbability(logits, classes, plane), size, width, height, 'linear');
  const mask = classes === 1 ? probability.map((p) => (p >= 128 ? 255 : 0)) : resizePlane(logitsToMask(logits, classes, plane), size, width, height, 'nearest');
  return { mask, probability, width, height, logits, inferenceMs, totalMs: performance.now() - t0, resized };
}
