/**
 * One uploaded DICOM image (Part 10, uncompressed: an ultrasound frame, a CT or MR slice) -> 8-bit pixels as a PNG
 * for the image path, with what the answer reports: modality, the intensity mapping used and the pixel spacing.
 *
 * Parsing and decoding use the volume readers (src/data/volume/dicom-file.ts, dicom-decode.ts). Intensities:
 * - CT: stored values × RescaleSlope + RescaleIntercept = HU, then the volume code's default 'ct' preset
 *   (intensity.ts: HU clipped to [-125, 275], 8-bit codes over that range);
 * - anything else, greyscale: the rescaled values min-max stretched to 0..255 (MONOCHROME1 inverted, so that
 *   bright is bright as on the modality's display);
 * - 8-bit colour (RGB, YBR_FULL; an ultrasound frame with overlays): the pixels as they are, in RGB.
 * Nothing here logs or returns a tag that could identify a patient.
 */
import { createRequire } from 'node:module';
import { inflateRawSync } from 'node:zlib';
import type { DataSet } from 'dicom-parser';
import sharp from 'sharp';
import { decodeFrame, TRANSFER_SYNTAXES, transferSyntaxName } from '../data/volume/dicom-decode.ts';
import { frameBytes, isPart10, parseDicomFile, sliceOf } from '../data/volume/dicom-file.ts';
import { CT_RANGE, intensityMap, quantize } from '../data/volume/intensity.ts';
import { HttpError } from './errors.ts';

type DicomParser = typeof import('dicom-parser');
const dicomParser = createRequire(import.meta.url)('dicom-parser') as DicomParser;

export { isPart10 as looksLikeDicom };

const DEFLATED = '1.2.840.10008.1.2.1.99';
/** Uncompressed syntaxes: the native ones of dicom-decode.ts. */
const UNCOMPRESSED = [...TRANSFER_SYNTAXES].filter(([, s]) => s.codec === 'native' || s.codec === 'nativeBigEndian').map(([uid]) => uid);

export interface DicomInfo {
  modality: string;
  photometric: string;
  transfer_syntax: string;
  bits_stored: number;
  /** How the stored values became the 8-bit image the model saw. */
  intensity: { mapping: 'ct'; window_hu: [number, number] } | { mapping: 'min-max'; range: [number, number]; inverted: boolean } | { mapping: 'none (8-bit colour)' };
  /** [between rows, between columns] in mm, or null when the file gives none. */
  pixel_spacing_mm: [number, number] | null;
  pixel_spacing_source: 'PixelSpacing' | 'SequenceOfUltrasoundRegions' | null;
}

export interface DicomImage {
  /** The 8-bit image, PNG-encoded (lossless), for the image path. */
  png: Buffer;
  width: number;
  height: number;
  info: DicomInfo;
}

const malformed = (why: string) => new HttpError(400, `uploaded DICOM: malformed file (${why})`);
/** The first line of an error; dicom-parser throws strings, Errors, or {exception: string, dataSet} objects. */
function firstLine(e: unknown): string {
  const exception = (e as { exception?: unknown } | undefined)?.exception;
  const text = e instanceof Error ? e.message : typeof e === 'string' ? e : typeof exception === 'string' ? exception : 'unreadable';
  const line = text.split('\n')[0]!.replace(/^dicomParser[.:]\w+: /, '');
  return line === 'buffer overrun' ? 'buffer overrun: the file is truncated, or an element length is wrong' : line;
}

function parse(bytes: Uint8Array, maxInflated: number): DataSet {
  let syntax: string;
  try {
    syntax = (dicomParser.readPart10Header(bytes).string('x00020010') ?? '').replace(/\0/g, '').trim();
  } catch (e) {
    throw malformed(firstLine(e));
  }
  if (!syntax) throw malformed('no TransferSyntaxUID in the file meta information');
  if (!UNCOMPRESSED.includes(syntax))
    throw new HttpError(
      415,
      `uploaded DICOM is stored as ${transferSyntaxName(syntax)}; this service reads uncompressed DICOM only (${UNCOMPRESSED.map(transferSyntaxName).join(', ')}); convert it with e.g. gdcmconv --raw or dcmdjpeg`,
    );
  try {
    if (syntax !== DEFLATED) return parseDicomFile(bytes);
    // a deflated dataset is inflated with a bound, so a small upload cannot expand without limit
    const inflater = (arr: Uint8Array, position: number): Uint8Array => {
      let inflated: Buffer;
      try {
        inflated = inflateRawSync(arr.subarray(position), { maxOutputLength: maxInflated });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new HttpError(422, `uploaded DICOM: the deflated dataset inflates to more than ${maxInflated} bytes`);
        throw e;
      }
      const out = new Uint8Array(position + inflated.length);
      out.set(arr.subarray(0, position));
      out.set(inflated, position);
      return out;
    };
    return dicomParser.parseDicom(bytes, { inflater: inflater as unknown as (arr: Uint8Array, position: number) => void });
  } catch (e) {
    if (e instanceof HttpError) throw e;
    throw malformed(firstLine(e));
  }
}

/** PixelSpacing, else the first ultrasound region calibrated in cm on both axes (PhysicalDeltaX/Y). */
function pixelSpacing(ds: DataSet, fromHeader: number[]): Pick<DicomInfo, 'pixel_spacing_mm' | 'pixel_spacing_source'> {
  if (fromHeader.length === 2 && fromHeader.every((v) => v > 0)) return { pixel_spacing_mm: [fromHeader[0]!, fromHeader[1]!], pixel_spacing_source: 'PixelSpacing' };
  for (const item of ds.elements.x00186011?.items ?? []) {
    const r = item.dataSet;
    if (!r) continue;
    const [ux, uy, dx, dy] = [r.uint16('x00186024'), r.uint16('x00186026'), r.double('x0018602c'), r.double('x0018602e')];
    // units 3: cm; the deltas are cm per pixel
    if (ux === 3 && uy === 3 && dx !== undefined && dy !== undefined && dx > 0 && dy > 0)
      return { pixel_spacing_mm: [+(Math.abs(dy) * 10).toPrecision(12), +(Math.abs(dx) * 10).toPrecision(12)], pixel_spacing_source: 'SequenceOfUltrasoundRegions' };
  }
  return { pixel_spacing_mm: null, pixel_spacing_source: null };
}

/** 8-bit colour pixels (RGB or YBR_FULL, either planar configuration) -> interleaved RGB. */
function colourPixels(frame: Uint8Array, n: number, photometric: string, planar: number): Uint8Array {
  if (frame.length < n * 3) throw malformed(`pixel data has ${frame.length} bytes, ${n}×3 expected`);
  const rgb = new Uint8Array(n * 3);
  const at = planar === 1 ? (i: number, c: number) => frame[c * n + i]! : (i: number, c: number) => frame[i * 3 + c]!;
  const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));
  for (let i = 0; i < n; i++) {
    const [a, b, c] = [at(i, 0), at(i, 1), at(i, 2)];
    if (photometric === 'RGB') rgb.set([a, b, c], i * 3);
    else rgb.set([clamp(a + 1.402 * (c - 128)), clamp(a - 0.344136 * (b - 128) - 0.714136 * (c - 128)), clamp(a + 1.772 * (b - 128))], i * 3);
  }
  return rgb;
}

/**
 * Decodes an uploaded DICOM image. 400 for a malformed file, 415 for what is not read (compressed pixel data,
 * palette colour, odd bit depths), 422 for an image over `maxPixels` or several frames.
 */
export async function decodeDicomUpload(bytes: Uint8Array, maxPixels: number): Promise<DicomImage> {
  // the pixel data of the largest image we accept, in 32-bit samples × 3, plus room for the other elements
  const ds = parse(bytes, maxPixels * 12 + 2 ** 20);
  const s = sliceOf(ds, 'upload');
  if (!s) throw new HttpError(422, 'uploaded DICOM holds no image (no Pixel Data element): send an image object (a CT or MR slice, an ultrasound frame)');
  const { rows, columns } = s;
  if (!rows || !columns) throw malformed(`Rows ${rows}, Columns ${columns}`);
  if (rows * columns > maxPixels)
    throw new HttpError(
      422,
      `uploaded DICOM image is ${columns}x${rows} = ${(rows * columns).toLocaleString('en-US')} pixels; this server accepts at most ${maxPixels.toLocaleString('en-US')} pixels`,
    );
  if (s.frames !== 1) throw new HttpError(422, `uploaded DICOM has ${s.frames} frames; send a single image (one frame; split a cine loop with e.g. dcmsplit or gdcmtool)`);
  const modality = (ds.string('x00080060') ?? '').trim().toUpperCase() || 'unknown';
  const photometric = s.photometric.toUpperCase();
  const spacing = pixelSpacing(ds, s.pixelSpacing);
  const base = { modality, photometric, transfer_syntax: transferSyntaxName(s.syntax), bits_stored: s.bitsStored, ...spacing };
  const n = rows * columns;
  let pixels: Uint8Array;
  let channels: 1 | 3;
  let intensity: DicomInfo['intensity'];

  if (s.samplesPerPixel === 3 && (photometric === 'RGB' || photometric === 'YBR_FULL')) {
    if (s.bitsAllocated !== 8) throw new HttpError(415, `uploaded DICOM: ${s.bitsAllocated}-bit colour is not supported (8-bit RGB or YBR_FULL)`);
    pixels = colourPixels(frameBytes(ds, false), n, photometric, ds.uint16('x00280006') ?? 0);
    channels = 3;
    intensity = { mapping: 'none (8-bit colour)' };
  } else if (s.samplesPerPixel === 1 && (photometric === 'MONOCHROME1' || photometric === 'MONOCHROME2')) {
    if (![8, 16, 32].includes(s.bitsAllocated)) throw new HttpError(415, `uploaded DICOM: BitsAllocated ${s.bitsAllocated} is not supported (8, 16 or 32)`);
    let stored;
    try {
      stored = await decodeFrame(s.syntax, frameBytes(ds, false), s);
    } catch (e) {
      throw malformed(firstLine(e));
    }
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = stored[i]! * s.slope + s.intercept;
    channels = 1;
    if (modality === 'CT') {
      pixels = quantize(values, intensityMap(values, { kind: 'ct' }));
      intensity = { mapping: 'ct', window_hu: [CT_RANGE[0], CT_RANGE[1]] };
    } else {
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of values) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const inverted = photometric === 'MONOCHROME1';
      pixels = new Uint8Array(n);
      const k = hi > lo ? 255 / (hi - lo) : 0;
      for (let i = 0; i < n; i++) {
        const q = Math.round((values[i]! - lo) * k);
        pixels[i] = inverted ? 255 - q : q;
      }
      intensity = { mapping: 'min-max', range: [lo, hi], inverted };
    }
  } else {
    throw new HttpError(
      415,
      `uploaded DICOM: ${photometric} with ${s.samplesPerPixel} sample(s) per pixel is not supported; send MONOCHROME1/MONOCHROME2 greyscale or 8-bit RGB/YBR_FULL colour`,
    );
  }
  const png = await sharp(pixels, { raw: { width: columns, height: rows, channels } }).png({ compressionLevel: 1 }).toBuffer();
  return { png, width: columns, height: rows, info: { ...base, intensity } };
}
