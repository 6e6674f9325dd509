import { stat, readFile } from 'node:fs/promises';
import bmp from 'bmp-js';
import sharp, { type Metadata, type Sharp } from 'sharp';
import { UserError } from '../errors.ts';
import { resizeLinearCv2, resizeNearestCv2, type ResizeMode } from './resize.ts';

/**
 * Images larger than this many pixels are refused from their header, before anything is decoded (decompression
 * bombs: a PNG of a few hundred bytes can declare 100000 x 100000 pixels). 8192 x 8192 is far beyond what a
 * segmentation at 256 x 256 needs; decoding it takes about 200 MB (RGB, 8-bit).
 */
export const MAX_IMAGE_PIXELS = 8192 * 8192;

/** Image files larger than this are refused before they are read (an image within the pixel limit is smaller). */
export const MAX_IMAGE_FILE_BYTES = 512 * 2 ** 20;

/** Formats we decode (libvips' header sniffing, not the file name). Everything else (SVG, HEIF, GIF, ...) is refused. */
export const IMAGE_FORMATS = ['png', 'jpeg', 'webp', 'tiff'] as const;

export interface DecodedImage {
  /** Interleaved 8-bit pixels, `channels` per pixel. */
  pixels: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** What an image's header says, read without decoding its pixels. */
export interface ImageHeader {
  format: (typeof IMAGE_FORMATS)[number];
  /** Size after EXIF orientation, the size `decodeImage` returns. */
  width: number;
  height: number;
  /** Channels as stored (a palette image counts its palette's colours: 3 or 4). */
  channels: number;
  /** 8 or 16 bits per sample (1, 2 and 4-bit PNGs count as 8: libvips scales them). */
  bits: 8 | 16;
  palette: boolean;
  hasAlpha: boolean;
  /**
   * A TIFF whose PhotometricInterpretation says grey (min-is-black) but which stores 3 or more samples per pixel
   * that are not declared as extra samples (as some public endoscopy datasets ship): the samples are RGB, and
   * `decodeImage` decodes them as such. libvips alone reads band 0 as grey and the others as alpha.
   */
  greyTiffWithColourSamples: boolean;
}

/** What the first IFD of a classic TIFF says about its samples; undefined for other files and unreadable IFDs. */
export function tiffSampleLayout(bytes: Uint8Array): { photometric: number; samplesPerPixel: number; extraSamples: number } | undefined {
  if (bytes.length < 8) return undefined;
  const le = bytes[0] === 0x49 && bytes[1] === 0x49;
  if (!le && !(bytes[0] === 0x4d && bytes[1] === 0x4d)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(2, le) !== 42) return undefined; // BigTIFF (43) and others: not looked at
  const ifd = view.getUint32(4, le);
  if (ifd + 2 > bytes.length) return undefined;
  const entries = view.getUint16(ifd, le);
  if (ifd + 2 + entries * 12 > bytes.length) return undefined;
  let photometric = -1;
  let samplesPerPixel = 1;
  let extraSamples = 0;
  for (let i = 0; i < entries; i++) {
    const e = ifd + 2 + i * 12;
    const tag = view.getUint16(e, le);
    const type = view.getUint16(e + 2, le);
    const value = type === 3 ? view.getUint16(e + 8, le) : type === 4 ? view.getUint32(e + 8, le) : -1;
    if (tag === 262) photometric = value;
    else if (tag === 277) samplesPerPixel = value;
    else if (tag === 338) extraSamples = view.getUint32(e + 4, le);
  }
  return { photometric, samplesPerPixel, extraSamples };
}

/** Min-is-black with at least 3 samples that the ExtraSamples tag does not account for: stored RGB (see ImageHeader). */
function isGreyTiffWithColourSamples(bytes: Uint8Array): boolean {
  const t = tiffSampleLayout(bytes);
  return t !== undefined && t.photometric === 1 && t.samplesPerPixel >= 3 && t.samplesPerPixel - t.extraSamples >= 3;
}

const fmtPixels = (n: number) => n.toLocaleString('en-US');

/** The bytes of an image file, with one-line errors naming it; files over MAX_IMAGE_FILE_BYTES are not read. */
export async function readImageFile(path: string, label = path): Promise<Uint8Array> {
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw new UserError(`${label}: is a directory, not an image file`);
    if (!info.isFile()) throw new UserError(`${label}: not a regular file (a device, pipe or socket)`);
    if (info.size > MAX_IMAGE_FILE_BYTES)
      throw new UserError(`${label}: file is ${(info.size / 2 ** 20).toFixed(0)} MB, over the ${MAX_IMAGE_FILE_BYTES / 2 ** 20} MB limit for an image`);
    return await readFile(path);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${label}: ${code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, not an image file' : `cannot read (${code ?? (e as Error).message})`}`);
  }
}

async function bytesOf(source: string | Uint8Array, label: string): Promise<Uint8Array> {
  const bytes = typeof source === 'string' ? await readImageFile(source, label) : source;
  return isBmp(bytes) ? bmpToPng(bytes, label) : bytes;
}

const isBmp = (b: Uint8Array) => b.length >= 26 && b[0] === 0x42 && b[1] === 0x4d;

/** libvips as shipped with sharp has no BMP loader: decode BMP with bmp-js and hand sharp a lossless PNG. */
async function bmpToPng(bytes: Uint8Array, label: string): Promise<Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = view.getInt32(18, true);
  const height = Math.abs(view.getInt32(22, true));
  // check the claimed size before bmp-js allocates for it
  if (width <= 0 || height <= 0) throw new UserError(`${label}: not a readable image (BMP header has size ${width}x${height})`);
  if (width * height > MAX_IMAGE_PIXELS)
    throw new UserError(`${label}: image is ${width}x${height} = ${fmtPixels(width * height)} pixels, over the limit of ${fmtPixels(MAX_IMAGE_PIXELS)} pixels`);
  const bitsPerPixel = view.getUint16(28, true);
  const compression = view.getUint32(30, true);
  const rowBytes = Math.ceil((width * bitsPerPixel) / 32) * 4;
  if (compression === 0 && bytes.length < view.getUint32(10, true) + rowBytes * height)
    throw new UserError(`${label}: not a readable image (truncated BMP: ${width}x${height} at ${bitsPerPixel} bits needs more data than the file has)`);
  let decoded: { width: number; height: number; data: Buffer };
  try {
    decoded = bmp.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new UserError(`${label}: not a readable image (BMP: ${(e as Error).message.split('\n')[0]})`);
  }
  const n = decoded.width * decoded.height;
  if (decoded.data.length < n * 4) throw new UserError(`${label}: not a readable image (truncated BMP)`);
  const rgb = new Uint8Array(n * 3);
  // bmp-js gives 4 bytes per pixel in A, B, G, R order
  for (let i = 0; i < n; i++) {
    rgb[i * 3] = decoded.data[i * 4 + 3]!;
    rgb[i * 3 + 1] = decoded.data[i * 4 + 2]!;
    rgb[i * 3 + 2] = decoded.data[i * 4 + 1]!;
  }
  return sharp(rgb, { raw: { width: decoded.width, height: decoded.height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

function sniff(bytes: Uint8Array): string | undefined {
  const ascii = (n: number) => String.fromCharCode(...bytes.subarray(0, n));
  if (ascii(4) === 'DICM' || ascii(132).endsWith('DICM')) return 'DICOM is not supported; export the image as PNG';
  return undefined;
}

/**
 * Reads an image's header only: format, size (after EXIF orientation), channels, bit depth. Refuses empty files,
 * formats outside {@link IMAGE_FORMATS}, sample types other than 8 or 16-bit integers, and images over
 * `maxPixels` (default {@link MAX_IMAGE_PIXELS}), all as one-line UserErrors starting with the label.
 */
export async function readImageHeader(source: string | Uint8Array, o: { label?: string; maxPixels?: number } = {}): Promise<ImageHeader> {
  const label = o.label ?? (typeof source === 'string' ? source : 'image');
  const bytes = await bytesOf(source, label);
  return headerOf(bytes, label, o.maxPixels ?? MAX_IMAGE_PIXELS);
}

async function headerOf(bytes: Uint8Array, label: string, maxPixels: number): Promise<ImageHeader> {
  if (bytes.length === 0) throw new UserError(`${label}: empty file (0 bytes)`);
  let meta: Metadata;
  try {
    // the header only, no pixel limit here: a huge claim gets the message below, with its numbers
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    const why = (e as Error).message.split('\n')[0]!.trim();
    throw new UserError(`${label}: not a readable image (${sniff(bytes) ?? (/unsupported image format/.test(why) ? 'unknown format' : why.replace(/:$/, ''))})`);
  }
  const format = String(meta.format ?? 'unknown');
  if (!(IMAGE_FORMATS as readonly string[]).includes(format))
    throw new UserError(`${label}: unsupported image format "${format}"; use ${IMAGE_FORMATS.map((f) => f.toUpperCase()).join(', ')}`);
  const greyTiffWithColourSamples = format === 'tiff' && isGreyTiffWithColourSamples(bytes);
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new UserError(`${label}: not a readable image (no size in its header)`);
  if (width * height > maxPixels)
    throw new UserError(`${label}: image is ${width}x${height} = ${fmtPixels(width * height)} pixels, over the limit of ${fmtPixels(maxPixels)} pixels`);
  if (meta.depth !== 'uchar' && meta.depth !== 'ushort')
    throw new UserError(`${label}: ${meta.depth ?? 'unknown'} samples are not supported (8 or 16-bit integer images only)`);
  return {
    format: format as ImageHeader['format'],
    width,
    height,
    channels: meta.channels ?? 0,
    bits: meta.depth === 'ushort' ? 16 : 8,
    palette: Boolean(meta.isPalette),
    // libvips takes the undeclared samples of a grey TIFF for alpha
    hasAlpha: greyTiffWithColourSamples ? (meta.channels ?? 0) > 3 : Boolean(meta.hasAlpha),
    greyTiffWithColourSamples,
  };
}

/** Width and height of an encoded image (after EXIF orientation) without decoding its pixels; checks as {@link readImageHeader}. */
export async function imageSize(source: string | Uint8Array, label = typeof source === 'string' ? source : 'image'): Promise<{ width: number; height: number }> {
  const { width, height } = await readImageHeader(source, { label });
  return { width, height };
}

/** 16-bit samples to 8-bit, rounded: v * 255 / 65535. */
function to8bit(data: Buffer): Uint8Array {
  const n = data.byteLength >> 1;
  const wide = data.byteOffset % 2 === 0 ? new Uint16Array(data.buffer, data.byteOffset, n) : new Uint16Array(Uint8Array.from(data).buffer, 0, n);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(wide[i]! / 257);
  return out;
}

/**
 * The stored samples 0-2 of a grey TIFF with colour samples ({@link ImageHeader.greyTiffWithColourSamples}) as an
 * 8-bit RGB sharp pipeline, EXIF orientation applied. sharp has no way to read the bands of a grey image as they are
 * (`extractChannel` and every colourspace conversion collapse it to its first band), but libvips' conversion to
 * sRGB converts band 0 and passes the other bands through unchanged: bands [s0, s0, s0, s1, s2, ...].
 */
async function storedRgbOfGreyTiff(bytes: Uint8Array, maxPixels: number, wide: boolean): Promise<Sharp> {
  const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
    .rotate()
    .toColourspace(wide ? 'rgb16' : 'srgb')
    .raw({ depth: wide ? 'ushort' : 'uchar' })
    .toBuffer({ resolveWithObject: true });
  const samples = wide ? to8bit(data) : data;
  const bands = info.channels;
  if (bands < 5) throw new Error(`decoder returned ${bands} bands for a grey TIFF with colour samples`);
  const n = info.width * info.height;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    rgb[i * 3] = samples[i * bands]!;
    rgb[i * 3 + 1] = samples[i * bands + 3]!;
    rgb[i * 3 + 2] = samples[i * bands + 4]!;
  }
  return sharp(rgb, { raw: { width: info.width, height: info.height, channels: 3 } });
}

/**
 * Decodes PNG/JPEG/WebP/TIFF to 8-bit RGB (or grey with `grey`), optionally resized to size×size.
 * `kernel` is 'linear' for images and 'nearest' for masks; `resize` is 'cv2' (default: OpenCV's INTER_LINEAR and
 * INTER_NEAREST, see resize.ts) or 'antialias' (sharp's kernels, run at the decoding bit depth). The header is
 * checked first ({@link readImageHeader}): an image over `maxPixels` is refused before any pixel is decoded. 16-bit
 * images are processed at 16 bits and rounded to 8 at the end (v * 255 / 65535); palette images give their
 * palette's colours; alpha is dropped. A grey TIFF with colour samples gives its stored RGB samples
 * ({@link ImageHeader.greyTiffWithColourSamples}; 16-bit ones are rounded to 8 bits before anything else).
 * Every failure (missing, empty, truncated, corrupt, unsupported, too large) is a UserError naming the file.
 */
export async function decodeImage(
  source: string | Uint8Array,
  o: { grey?: boolean; size?: number; kernel?: 'linear' | 'nearest'; resize?: ResizeMode; label?: string; maxPixels?: number } = {},
): Promise<DecodedImage> {
  const label = o.label ?? (typeof source === 'string' ? source : 'image');
  const bytes = await bytesOf(source, label);
  const maxPixels = o.maxPixels ?? MAX_IMAGE_PIXELS;
  const header = await headerOf(bytes, label, maxPixels);
  const colourTiff = header.greyTiffWithColourSamples;
  const wide = header.bits === 16 && !colourTiff;
  const kernel = o.kernel === 'nearest' ? 'nearest' : 'linear';
  let decoded: DecodedImage;
  try {
    let pipeline = colourTiff ? await storedRgbOfGreyTiff(bytes, maxPixels, header.bits === 16) : sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' }).rotate();
    pipeline = pipeline.removeAlpha().toColourspace(o.grey ? (wide ? 'grey16' : 'b-w') : wide ? 'rgb16' : 'srgb');
    if (o.size && o.resize === 'antialias') pipeline = pipeline.resize(o.size, o.size, { fit: 'fill', kernel });
    const { data, info } = await pipeline.raw({ depth: wide ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
    const pixels = wide ? to8bit(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (info.channels !== (o.grey ? 1 : 3) || pixels.length !== info.width * info.height * info.channels)
      throw new Error(`decoder returned ${info.channels} channels, ${pixels.length} samples for ${info.width}x${info.height}`);
    decoded = { pixels, width: info.width, height: info.height, channels: info.channels };
  } catch (e) {
    const why = (e as Error).message.split('\n')[0]!.trim().replace(/:$/, '');
    throw new UserError(`${label}: not a readable image (${!why || /^unknown error$/i.test(why) ? 'corrupt or truncated image data' : why})`);
  }
  return o.size && o.resize !== 'antialias' ? resizeDecoded(decoded, o.size, kernel) : decoded;
}

/** OpenCV's resize of decoded pixels to size×size (INTER_LINEAR or INTER_NEAREST). */
function resizeDecoded(img: DecodedImage, size: number, kernel: 'linear' | 'nearest'): DecodedImage {
  if (img.width === size && img.height === size) return img;
  const resize = kernel === 'nearest' ? resizeNearestCv2 : resizeLinearCv2;
  return { pixels: resize(img.pixels, img.width, img.height, img.channels, size, size), width: size, height: size, channels: img.channels };
}

/** Encodes 8-bit pixels as PNG. */
export async function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 2 | 3 | 4): Promise<Buffer> {
  return sharp(pixels, { raw: { width, height, channels } }).png().toBuffer();
}

/**
 * Resizes decoded pixels to size×size: bilinear for images, nearest for masks, with OpenCV's arithmetic by default
 * (`cv2`, the original protocol: resize.ts) or sharp's antialiasing kernels (`antialias`).
 */
export async function resizeImage(img: DecodedImage, size: number, kernel: 'linear' | 'nearest', mode: ResizeMode = 'cv2'): Promise<DecodedImage> {
  if (img.width === size && img.height === size) return img;
  if (mode === 'cv2') return resizeDecoded(img, size, kernel);
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
