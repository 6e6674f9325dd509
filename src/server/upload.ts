import type { FastifyRequest } from 'fastify';
import sharp, { type Metadata } from 'sharp';
import { HttpError } from './errors.ts';

/** Image formats the service decodes; everything else (SVG, PDF, HEIF, ...) is refused before any decoder runs. */
export const ACCEPTED_FORMATS = ['png', 'jpeg', 'webp', 'tiff'] as const;

/** Raw-body content types (besides multipart/form-data); `application/dicom` is one DICOM image (dicom.ts). */
export const RAW_CONTENT_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/tiff', 'application/dicom', 'application/octet-stream'] as const;

export const FIELD = 'image';

/** Multipart file fields read: `image`, or `volume` (the same; for NIfTI uploads). */
const FILE_FIELDS: readonly string[] = [FIELD, 'volume'];

const mb = (bytes: number) => `${+(bytes / 2 ** 20).toFixed(2)} MB`;

export function tooLarge(maxUploadBytes: number): HttpError {
  return new HttpError(413, `upload larger than the limit of ${mb(maxUploadBytes)} (${maxUploadBytes} bytes)`);
}

/** The uploaded bytes of a request: the `image` (or `volume`) file of a multipart body, or the raw body. */
export async function readUpload(request: FastifyRequest, maxUploadBytes: number): Promise<Buffer> {
  let bytes: Buffer | undefined;
  if (request.isMultipart()) {
    try {
      const part = await request.file();
      if (!part) throw new HttpError(400, `multipart body has no file; send the image in the field "${FIELD}"`);
      if (!FILE_FIELDS.includes(part.fieldname)) {
        part.file.resume();
        throw new HttpError(400, `multipart file is in the field "${part.fieldname}"; send the image in the field "${FIELD}" (a NIfTI volume: "${FIELD}" or "volume")`);
      }
      bytes = await part.toBuffer();
      // toBuffer only throws when it sees the truncation while reading; when the limit falls on a chunk boundary
      // the stream just ends at the limit, truncated, and the cut file would reach the decoder
      if (part.file.truncated || bytes.length > maxUploadBytes) throw tooLarge(maxUploadBytes);
    } catch (e) {
      if (e instanceof HttpError) throw e;
      const err = e as Error & { code?: string; statusCode?: number };
      if (err.code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge(maxUploadBytes);
      if (err.statusCode === 413) throw new HttpError(413, `multipart body has too many parts (${err.message}); send one file in the field "${FIELD}"`);
      throw new HttpError(400, `malformed multipart body (${err.message})`);
    }
  } else {
    bytes = Buffer.isBuffer(request.body) ? request.body : undefined;
  }
  if (!bytes || bytes.length === 0)
    throw new HttpError(400, `empty body: send the image as multipart/form-data (field "${FIELD}") or as the raw body (Content-Type: image/png, image/jpeg, ...)`);
  return bytes;
}

/** Reads the image header only: refuses unknown formats and images over `maxPixels` before anything is decoded. */
export async function checkImageHeader(bytes: Uint8Array, maxPixels: number): Promise<{ width: number; height: number; format: string }> {
  let meta: Metadata;
  try {
    // the header only: no pixel limit here, so a huge claim gets our message below rather than libvips' one
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new HttpError(422, `uploaded image: not a readable image (${(e as Error).message.split('\n')[0]})`);
  }
  const format = String(meta.format ?? 'unknown');
  if (!(ACCEPTED_FORMATS as readonly string[]).includes(format))
    throw new HttpError(415, `uploaded image: unsupported format "${format}"; send ${ACCEPTED_FORMATS.map((f) => f.toUpperCase()).join(', ')}`);
  const { width, height } = meta;
  if (!width || !height) throw new HttpError(422, 'uploaded image: not a readable image (no dimensions in its header)');
  if (width * height > maxPixels)
    throw new HttpError(
      422,
      `uploaded image is ${width}x${height} = ${(width * height).toLocaleString('en-US')} pixels; this server accepts at most ${maxPixels.toLocaleString('en-US')} pixels`,
    );
  return { width, height, format };
}
