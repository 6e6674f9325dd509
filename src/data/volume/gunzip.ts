/**
 * Bounded gzip for .nii.gz: the header is inflated from the first kilobyte only, and the whole file is inflated
 * with a ceiling the header has fixed, so a gzip bomb stops at that ceiling instead of filling memory.
 */
import { constants, gunzipSync } from 'node:zlib';
import { UserError } from '../../errors.ts';

export const isGzip = (bytes: Uint8Array) => bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

/**
 * The start of the inflated stream: inflating the first 1024 compressed bytes yields the 540 a NIfTI-2 header needs
 * (deflate cannot expand data by more than a few bytes per block) and at most about 1 MB (deflate's 1032:1 limit).
 */
export function gunzipHead(bytes: Uint8Array, source: string): Uint8Array {
  try {
    return gunzipSync(bytes.subarray(0, 1024), { finishFlush: constants.Z_SYNC_FLUSH });
  } catch (e) {
    throw new UserError(`${source}: not a valid gzip file (${(e as Error).message})`);
  }
}

/**
 * The whole inflated stream, which must be exactly `expected` bytes: a longer stream is refused as soon as it
 * passes `expected` (zlib's maxOutputLength), a shorter or cut one is an error too. `declared` says where
 * `expected` comes from, e.g. "the header declares 2×2×2 int16 voxels from offset 352 (368 bytes)".
 */
export function gunzipExact(bytes: Uint8Array, expected: number, source: string, declared: string): Uint8Array {
  let out: Buffer;
  try {
    out = gunzipSync(bytes, { maxOutputLength: expected + 1 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError)
      throw new UserError(`${source}: the data inflates to more than ${declared}; stopped there (header dimensions disagree with the data size, or a gzip bomb)`);
    if (err.code === 'Z_BUF_ERROR' || /unexpected end/i.test(err.message))
      throw new UserError(`${source}: the gzip stream is truncated (the file was cut short while copying or downloading?)`);
    throw new UserError(`${source}: the gzip stream is corrupt (${err.message})`);
  }
  if (out.length < expected) throw new UserError(`${source}: the data inflates to ${out.length} bytes, but ${declared}: header dimensions disagree with the data size`);
  return out;
}
