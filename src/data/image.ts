import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { UserError } from '../errors.ts';

/** Images larger than this many pixels are refused before decoding (decompression bombs). */
export const MAX_IMAGE_PIXELS = 16384 * 16384;

export interface DecodedImage {
  /** Interleaved 8-bit pixels, `channels` per pixel. */
  pixels: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

async function bytesOf(source: string | Uint8Array, label: string): Promise<Uint8Array> {
  if (typeof source !== 'string') return source;
  try {
    return await readFile(source);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${label}: ${code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : `cannot read (${code})`}`);
  }
}

/** Width and height of an encoded image without decoding its pixels. */
export async function imageSize(source: string | Uint8Array, label = typeof source === 'string' ? source : 'image'): Promise<{ width: number; height: number }> {
  const bytes = await bytesOf(source, label);
  try {
    const meta = await sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS }).metadata();
    if (!meta.width || !meta.height) throw new Error('no dimensions');
    return { width: meta.width, height: meta.height };
  } catch (e) {
    throw new UserError(`${label}: not a readable image (${(e as Error).message.split('\n')[0]})`);
  }
}

/**
 * Decodes PNG/JPEG/BMP/TIFF/WebP to 8-bit RGB (or grey with `grey`), optionally resized to size×size.
 * `kernel` is 'linear' for images and 'nearest' for masks. Corrupt or oversized files are UserErrors.
 */
export async function decodeImage(
  source: string | Uint8Array,
  o: { grey?: boolean; size?: number; kernel?: 'linear' | 'nearest'; label?: string } = {},
): Promise<DecodedImage> {
  const label = o.label ?? (typeof source === 'string' ? source : 'image');
  const bytes = await bytesOf(source, label);
  if (bytes.length === 0) throw new UserError(`${label}: empty file`);
  try {
    let pipeline = sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS, failOn: 'error' }).rotate();
    pipeline = o.grey ? pipeline.toColourspace('b-w') : pipeline.removeAlpha().toColourspace('srgb');
    if (o.size) pipeline = pipeline.resize(o.size, o.size, { fit: 'fill', kernel: o.kernel === 'nearest' ? 'nearest' : 'linear' });
    const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: info.channels };
  } catch (e) {
    throw new UserError(`${label}: not a readable image (${(e as Error).message.split('\n')[0]})`);
  }
}

/** Encodes 8-bit pixels as PNG. */
export async function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 2 | 3 | 4): Promise<Buffer> {
  return sharp(pixels, { raw: { width, height, channels } }).png().toBuffer();
}

/** Resizes decoded pixels to size×size (bilinear for images, nearest for masks). */
export async function resizeImage(img: DecodedImage, size: number, kernel: 'linear' | 'nearest'): Promise<DecodedImage> {
  if (img.width === size && img.height === size) return img;
  const raw = { width: img.width, height: img.height, channels: img.channels as 1 | 2 | 3 | 4 };
  let pipeline = sharp(img.pixels, { raw }).resize(size, size, { fit: 'fill', kernel });
  if (img.channels === 1) pipeline = pipeline.extractChannel(0); // sharp would widen grey to sRGB
  const out = await pipeline.raw().toBuffer();
  return { pixels: new Uint8Array(out.buffer, out.byteOffset, out.byteLength), width: size, height: size, channels: img.channels };
}

/** Resizes an 8-bit single-channel map (bilinear, or nearest for label maps). */
export async function resizePlane(plane: Uint8Array, width: number, height: number, toWidth: number, toHeight: number, kernel: 'linear' | 'nearest'): Promise<Uint8Array> {
  if (width === toWidth && height === toHeight) return plane;
  const out = await sharp(plane, { raw: { width, height, channels: 1 } })
    .resize(toWidth, toHeight, { fit: 'fill', kernel })
    .extractChannel(0)
    .raw()
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
