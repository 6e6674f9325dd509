/**
 * Reading and writing safetensors files (atomic writes); the format itself is safetensors-format.ts.
 *
 * Layout: an 8-byte little-endian u64 header length N, then N bytes of UTF-8 JSON
 * (`{"__metadata__"?: {string: string}, "<name>": {dtype, shape, data_offsets}, ...}`,
 * possibly padded with spaces), then the data buffer. `data_offsets` are relative to
 * the start of the data buffer; tensor data is little-endian, C order.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { UserError } from '../errors.ts';
import { encodeWithSource, foreignFormat, headerLengthOf, MAX_FILE_HEADER_BYTES, parseHeader, tensorsOf, type Fail, type TensorToEncode, type SafetensorsFile } from './safetensors-format.ts';

export * from './safetensors-format.ts';

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

async function readFully(handle: FileHandle, length: number, position: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) throw Object.assign(new Error('file ended early (it changed while being read?)'), { code: 'EOF' });
    done += bytesRead;
  }
  return buffer;
}

/**
 * Reads and parses a safetensors file. Throws {@link UserError} `"<path>: file not found"`
 * when it does not exist, and a UserError starting with the path for any other problem.
 *
 * The file is read in three steps, each checked before the next is allocated: the 8-byte length, the header
 * (at most `maxHeaderBytes`, default {@link MAX_FILE_HEADER_BYTES}, and within the file), then the data the
 * header's offsets cover (within the file). A header that lies about sizes or offsets costs a few bytes of reading.
 */
export async function readSafetensorsFile(path: string, o: { maxHeaderBytes?: number } = {}): Promise<SafetensorsFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') throw new UserError(`${path}: file not found`);
    throw new UserError(`${path}: cannot read file (${(err as Error).message})`);
  }
  let prefix: Uint8Array = new Uint8Array(0);
  const fail: Fail = (problem) => {
    const foreign = foreignFormat(prefix);
    if (foreign) throw new UserError(`${path}: not a safetensors file: ${foreign}`);
    // the first checks failing means the bytes are not safetensors at all (random bytes, a text file, ...)
    const alien = /^header (length \d+ exceeds the \d+-byte|is not valid|JSON is not)/.test(problem);
    throw new UserError(alien ? `${path}: not a safetensors file (${problem})` : `${path}: ${problem}`);
  };
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw new UserError(`${path}: is a directory, not a .safetensors file`);
    if (!info.isFile()) throw new UserError(`${path}: not a regular file (a device, pipe or socket)`);
    const size = info.size;
    prefix = await readFully(handle, Math.min(size, 16), 0);
    const headerLength = headerLengthOf(prefix, size, o.maxHeaderBytes ?? MAX_FILE_HEADER_BYTES, fail);
    const dataStart = 8 + headerLength;
    const { metadata, entries } = parseHeader(await readFully(handle, headerLength, 8), size - dataStart, fail);
    const dataEnd = entries.reduce((m, e) => Math.max(m, e.end), 0);
    const data = await readFully(handle, dataEnd, dataStart);
    return { tensors: tensorsOf(entries, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)), metadata };
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${path}: cannot read file (${(err as Error).message})`);
  } finally {
    await handle.close().catch(() => {});
  }
}

/**
 * Encodes tensors like {@link encodeSafetensors} and writes them to `path` atomically:
 * the bytes go to `${path}.tmp-<pid>-<random>`, are fsynced, and the temp file is renamed
 * over `path`. On failure the temp file is removed and a {@link UserError} is thrown.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: Iterable<[string, TensorToEncode]>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = encodeWithSource(tensors, metadata, path);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new UserError(`${path}: cannot write file (${(err as Error).message})`);
  }
}
