// Picked files -> training pairs at their stored size, decoded by the browser (works in a Worker: createImageBitmap +
// OffscreenCanvas). Colour management is off so PNG values arrive unchanged; masks become 0/1 planes by the Node
// trainer's rule (binarizeMask) or, for nnU-Net label maps, by label value.
import { binarizeMask, type Pair } from '../../data/pairs.ts';
import type { PairFiles } from './dataset.ts';

export class ImageDecodeError extends Error {}

export const MAX_TRAIN_IMAGE_SIDE = 8192;

export interface DecodedRgba {
  pixels: Uint8ClampedArray;
  width: number;
  height: number;
}

/** Decodes an encoded image (EXIF orientation applied, no colour conversion, no premultiplied alpha) to RGBA. */
export async function decodeRgba(file: Blob, name: string): Promise<DecodedRgba> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image', premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  } catch {
    throw new ImageDecodeError(`${name}: not a readable image`);
  }
  try {
    const { width, height } = bitmap;
    if (width > MAX_TRAIN_IMAGE_SIDE || height > MAX_TRAIN_IMAGE_SIDE) throw new ImageDecodeError(`${name}: ${width}x${height}, at most ${MAX_TRAIN_IMAGE_SIDE} px a side`);
    const ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new ImageDecodeError('2D canvas is not available');
    ctx.drawImage(bitmap, 0, 0);
    return { pixels: ctx.getImageData(0, 0, width, height).data, width, height };
  } finally {
    bitmap.close();
  }
}

/** Grey level of an RGBA pixel: the value itself when R = G = B, else Rec. 709 luma (libvips' b-w, which Node uses). */
function greyOf(p: Uint8ClampedArray, i: number): number {
  const r = p[i * 4]!;
  const g = p[i * 4 + 1]!;
  const b = p[i * 4 + 2]!;
  return r === g && g === b ? r : Math.round(0.2126 * r + 0.7152 * g + 0.0722 * b);
}

/** RGBA -> interleaved RGB (3 channels) or grey (1 channel), alpha dropped: what Node's decodeImage gives. */
export function rgbaToChannels(img: DecodedRgba, channels: 1 | 3): Uint8Array {
  const n = img.width * img.height;
  const out = new Uint8Array(n * channels);
  if (channels === 1) for (let i = 0; i < n; i++) out[i] = greyOf(img.pixels, i);
  else
    for (let i = 0; i < n; i++) {
      out[i * 3] = img.pixels[i * 4]!;
      out[i * 3 + 1] = img.pixels[i * 4 + 1]!;
      out[i * 3 + 2] = img.pixels[i * 4 + 2]!;
    }
  return out;
}

/** Decodes one pair; a mask whose size differs from its image is an ImageDecodeError naming both. */
export async function decodePair(pair: PairFiles, inChannels: 1 | 3): Promise<Pair> {
  const image = await decodeRgba(pair.image.file, pair.image.path);
  const { width, height } = image;
  const plane = width * height;
  const mask = new Uint8Array(pair.masks.length * plane);
  const decodedMasks = new Map<Blob, DecodedRgba>();
  for (const [k, m] of pair.masks.entries()) {
    let decoded = decodedMasks.get(m.file.file);
    if (!decoded) {
      decoded = await decodeRgba(m.file.file, m.file.path);
      decodedMasks.set(m.file.file, decoded);
    }
    if (decoded.width !== width || decoded.height !== height)
      throw new ImageDecodeError(`${m.file.path}: mask is ${decoded.width}x${decoded.height} but its image is ${width}x${height}`);
    const out = mask.subarray(k * plane, (k + 1) * plane);
    if (m.value === null) binarizeMask(rgbaToChannels(decoded, 1), out);
    else for (let i = 0; i < plane; i++) out[i] = decoded.pixels[i * 4] === m.value ? 1 : 0;
  }
  return { id: pair.id, width, height, channels: inChannels, image: rgbaToChannels(image, inChannels), mask, classes: pair.masks.length };
}
