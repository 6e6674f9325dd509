/**
 * The safetensors format: parsing and encoding bytes (no file system, so the browser uses it too;
 * safetensors.ts reads and writes files).
 *
 * Layout: an 8-byte little-endian u64 header length N, then N bytes of UTF-8 JSON
 * (`{"__metadata__"?: {string: string}, "<name>": {dtype, shape, data_offsets}, ...}`,
 * possibly padded with spaces), then the data buffer. `data_offsets` are relative to
 * the start of the data buffer; tensor data is little-endian, C order.
 */
import { UserError } from '../errors.ts';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** One tensor as stored in a file. */
export interface StoredTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** A view into the file holding exactly the tensor's bytes (may be unaligned). */
  bytes: Uint8Array;
}

export interface SafetensorsFile {
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
}

/** A tensor to encode: F32 from a Float32Array (the default) or I64 from a BigInt64Array. */
export interface TensorToEncode {
  dtype?: 'F32' | 'I64';
  shape: number[];
  data: Float32Array | BigInt64Array;
}

const DTYPE_SIZE: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Largest header we accept; real headers are kilobytes. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const METADATA_KEY = '__metadata__';

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(DTYPE_SIZE, value);
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** Number of elements of a shape, exact even when it exceeds 2^53. */
function elementCount(shape: number[]): bigint {
  return shape.reduce((n, d) => n * BigInt(d), 1n);
}

/** A tensor entry of a header, checked against the data buffer's length. */
export interface HeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

export type Fail = (problem: string) => never;

const mib = (bytes: number) => `${+(bytes / 2 ** 20).toFixed(2)} MiB`;

/** A tensor name for a message: quoted, and cut when a hostile header makes it huge. */
const quoted = (name: string) => JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name);

/**
 * The header length from the first 8 bytes, checked against the limit and against the bytes that follow, before
 * anything of that length is allocated.
 */
export function headerLengthOf(prefix: Uint8Array, fileLength: number, maxHeaderBytes: number, fail: Fail): number {
  if (fileLength < 8) fail(`file is ${fileLength} bytes, too short for the 8-byte header length`);
  const headerLength = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(maxHeaderBytes)) {
    fail(`header length ${headerLength} exceeds the ${maxHeaderBytes}-byte (${mib(maxHeaderBytes)}) limit`);
  }
  if (headerLength > BigInt(fileLength - 8)) {
    fail(`header length ${headerLength} exceeds the ${fileLength - 8} bytes after the length field (file truncated?)`);
  }
  return Number(headerLength);
}

/** Parses and checks the JSON header: every tensor's dtype, shape and offsets within `dataLength`, no overlaps. */
export function parseHeader(headerBytes: Uint8Array, dataLength: number, fail: Fail): { metadata: Record<string, string>; entries: HeaderEntry[] } {
  let headerText = '';
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (err) {
    fail(`header is not valid JSON (${(err as Error).message.slice(0, 200)})`);
  }
  if (!isPlainObject(header)) fail('header JSON is not an object');

  const entries: HeaderEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(info, fail);
      continue;
    }
    const where = `tensor ${quoted(name)}`;
    if (!isPlainObject(info)) fail(`${where} entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (!isDtype(dtype)) {
      fail(`${where} has unknown dtype ${JSON.stringify(dtype)?.slice(0, 100)} (expected one of ${Object.keys(DTYPE_SIZE).join(', ')})`);
    }
    if (!isShape(shape)) fail(`${where} has shape ${JSON.stringify(shape)?.slice(0, 100)}, not an array of non-negative integers`);
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      fail(`${where} has data_offsets ${JSON.stringify(offsets)?.slice(0, 100)}, not two non-negative integers [begin, end] with begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    const dt = dtype as SafetensorsDtype;
    const dims = shape as number[];
    if (end > dataLength) {
      fail(`${where} has data_offsets [${begin}, ${end}] but the data buffer is only ${dataLength} bytes`);
    }
    const needed = elementCount(dims) * BigInt(DTYPE_SIZE[dt]);
    if (needed !== BigInt(end - begin)) {
      fail(`${where} has data_offsets [${begin}, ${end}] but dtype ${dt} and shape ${JSON.stringify(dims)} need ${needed} bytes`);
    }
    entries.push({ name, dtype: dt, shape: dims, begin, end });
  }

  const ranges = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1]!;
    const cur = ranges[i]!;
    if (cur.begin < prev.end) {
      fail(
        `tensor ${quoted(cur.name)} data_offsets [${cur.begin}, ${cur.end}] overlap ` +
          `tensor ${quoted(prev.name)} data_offsets [${prev.begin}, ${prev.end}]`,
      );
    }
  }
  return { metadata, entries };
}

export function tensorsOf(entries: HeaderEntry[], data: Uint8Array): Map<string, StoredTensor> {
  return new Map(entries.map((e) => [e.name, { dtype: e.dtype, shape: e.shape, bytes: data.subarray(e.begin, e.end) }]));
}

/**
 * Parses a safetensors file held in memory. Tensor bytes are views into `file`, not copies.
 *
 * Every structural problem (truncation, bad JSON, unknown dtype, offsets that do not match
 * the shape or overlap, ...) throws a {@link UserError} whose message starts with `source`.
 */
export function parseSafetensors(file: Uint8Array, source = 'safetensors file'): SafetensorsFile {
  // A plain Uint8Array view, so subarray() gives plain views even when `file` is a Buffer.
  const bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
  const fail: Fail = (problem) => {
    throw new UserError(`${source}: ${problem}`);
  };
  const headerLength = headerLengthOf(bytes, bytes.length, MAX_HEADER_BYTES, fail);
  const dataStart = 8 + headerLength;
  const { metadata, entries } = parseHeader(bytes.subarray(8, dataStart), bytes.length - dataStart, fail);
  return { tensors: tensorsOf(entries, bytes.subarray(dataStart)), metadata };
}

function parseMetadata(value: unknown, fail: Fail): Record<string, string> {
  if (!isPlainObject(value)) fail(`${METADATA_KEY} is not an object`);
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [key, v] of entries) {
    if (typeof v !== 'string') fail(`${METADATA_KEY} value for ${quoted(key)} is not a string`);
  }
  // fromEntries defines own properties, so a "__proto__" key stays plain data.
  return Object.fromEntries(entries) as Record<string, string>;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

function bf16ToFloat(bits: number): number {
  u32Scratch[0] = bits << 16;
  return f32Scratch[0]!;
}

function f16ToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero / subnormal
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/**
 * Converts a stored tensor of any dtype to a fresh Float32Array (F16/BF16 are decoded,
 * F64 and integers are rounded to float32, I64 goes through Number, BOOL becomes 0/1).
 * Works for unaligned views.
 */
export function toFloat32(t: StoredTensor): Float32Array {
  const size = DTYPE_SIZE[t.dtype];
  const n = Math.floor(t.bytes.length / size);
  if (t.dtype === 'F32' && HOST_LITTLE_ENDIAN) {
    return new Float32Array(new Uint8Array(t.bytes).buffer, 0, n); // new Uint8Array(view) copies, aligned
  }
  const view = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const read: (offset: number) => number = {
    F64: (o: number) => view.getFloat64(o, true),
    F32: (o: number) => view.getFloat32(o, true),
    F16: (o: number) => f16ToFloat(view.getUint16(o, true)),
    BF16: (o: number) => bf16ToFloat(view.getUint16(o, true)),
    I64: (o: number) => Number(view.getBigInt64(o, true)),
    I32: (o: number) => view.getInt32(o, true),
    I16: (o: number) => view.getInt16(o, true),
    I8: (o: number) => view.getInt8(o),
    U8: (o: number) => view.getUint8(o),
    BOOL: (o: number) => (view.getUint8(o) !== 0 ? 1 : 0),
  }[t.dtype];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = read(i * size);
  return out;
}

/** The little-endian bytes of a typed array (a view on little-endian hosts). */
function littleEndianBytes(data: Float32Array | BigInt64Array): Uint8Array {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_LITTLE_ENDIAN) return raw;
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  data.forEach((v: number | bigint, i: number) => {
    if (typeof v === 'bigint') view.setBigInt64(i * 8, v, true);
    else view.setFloat32(i * 4, v, true);
  });
  return out;
}

export function encodeWithSource(
  tensors: Iterable<[string, TensorToEncode]>,
  metadata: Record<string, string> | undefined,
  source: string,
): Uint8Array {
  const fail = (problem: string): never => {
    throw new UserError(`${source}: ${problem}`);
  };
  // Header JSON is assembled by hand: a JS object would move integer-like names ("0") to the front.
  const headerParts: string[] = [];
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') fail(`${METADATA_KEY} value for ${JSON.stringify(key)} is not a string`);
    }
    headerParts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }

  const names = new Set<string>();
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const where = `tensor ${JSON.stringify(name)}`;
    if (name === METADATA_KEY) fail(`${METADATA_KEY} cannot be used as a tensor name`);
    if (names.has(name)) fail(`${where} appears twice`);
    names.add(name);
    const dtype = t.dtype ?? (t.data instanceof BigInt64Array ? 'I64' : 'F32');
    const expected = dtype === 'I64' ? BigInt64Array : Float32Array;
    if (!(t.data instanceof expected)) fail(`${where} has dtype ${dtype} but data is not a ${expected.name}`);
    if (!isShape(t.shape)) fail(`${where} has shape ${JSON.stringify(t.shape)}, not an array of non-negative integers`);
    if (BigInt(t.data.length) !== elementCount(t.shape)) {
      fail(`${where} has ${t.data.length} elements but shape ${JSON.stringify(t.shape)} needs ${elementCount(t.shape)}`);
    }
    const bytes = littleEndianBytes(t.data);
    const entry = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    headerParts.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
    chunks.push(bytes);
    offset += bytes.length;
  }

  const json = new TextEncoder().encode(`{${headerParts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength); // pad with spaces
  let at = 8 + headerLength;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Encodes tensors (in iteration order, for both header and data) and optional string
 * metadata as a safetensors file. The header is space-padded to a multiple of 8 bytes.
 * Tensors are F32 unless `dtype: 'I64'` is given with a BigInt64Array (a BigInt64Array
 * without a dtype is also stored as I64). Throws {@link UserError} when a tensor's
 * element count does not match its shape, a name repeats, or dtype and data disagree.
 */
export function encodeSafetensors(
  tensors: Iterable<[string, TensorToEncode]>,
  metadata?: Record<string, string>,
): Uint8Array {
  return encodeWithSource(tensors, metadata, 'safetensors encoder');
}

/**
 * Largest header {@link readSafetensorsFile} accepts. Weights headers are kilobytes (a few hundred tensors); the
 * format allows 100 MiB, but reading and parsing that much JSON costs about a gigabyte of memory.
 */
export const MAX_FILE_HEADER_BYTES = 16 * 2 ** 20;

/** Names a file that is clearly something else than safetensors, from its first bytes. */
export function foreignFormat(prefix: Uint8Array): string | undefined {
  const ascii = String.fromCharCode(...prefix.subarray(0, 8));
  const convert = 'save the state_dict with safetensors.torch.save_file(model.state_dict(), "weights.safetensors")';
  if (ascii.startsWith('PK\x03\x04')) return `it is a zip archive (a PyTorch torch.save .pt/.pth file?); ${convert}`;
  if (prefix[0] === 0x80 && prefix[1]! >= 2 && prefix[1]! <= 5) return `it is a Python pickle (torch.save?); ${convert}`;
  if (ascii.startsWith('\x89HDF')) return 'it is an HDF5 file (Keras?), not safetensors';
  if (ascii.startsWith('GGUF')) return 'it is a GGUF file, not safetensors';
  if (ascii.startsWith('\x93NUMPY')) return 'it is a NumPy .npy file, not safetensors';
  if (looksLikeOnnx(prefix)) return 'it is an ONNX model, not a weights file; --weights takes the .safetensors file the .onnx was exported from';
  return undefined;
}

/** ModelProto starts with ir_version (field 1, varint) followed by another ModelProto field. */
function looksLikeOnnx(prefix: Uint8Array): boolean {
  if (prefix[0] !== 0x08) return false;
  let i = 1;
  while (i < prefix.length && i < 11 && prefix[i]! & 0x80) i++;
  const next = prefix[i + 1];
  return next !== undefined && [0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72].includes(next);
}
