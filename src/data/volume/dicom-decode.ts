/**
 * DICOM pixel data -> stored integer values, one frame at a time. Uncompressed syntaxes are read in place; the
 * compressed ones go to well-kept codecs: OpenJPEG (JPEG 2000) and CharLS (JPEG-LS) as Cornerstone's WebAssembly
 * builds, and jpeg-lossless-decoder-js (JPEG lossless, processes 14 and 14 SV1), the decoder Cornerstone uses too.
 */
import { createRequire } from 'node:module';

export type StoredPixels = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array;

export interface PixelFormat {
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
}

type Codec = 'native' | 'nativeBigEndian' | 'jpeg2000' | 'jpegls' | 'jpegLossless';

/** Transfer syntaxes by UID: their names (for messages) and, when we read them, how. */
export const TRANSFER_SYNTAXES = new Map<string, { name: string; codec?: Codec }>([
  ['1.2.840.10008.1.2', { name: 'Implicit VR Little Endian', codec: 'native' }],
  ['1.2.840.10008.1.2.1', { name: 'Explicit VR Little Endian', codec: 'native' }],
  ['1.2.840.10008.1.2.1.99', { name: 'Deflated Explicit VR Little Endian', codec: 'native' }],
  ['1.2.840.10008.1.2.2', { name: 'Explicit VR Big Endian', codec: 'nativeBigEndian' }],
  ['1.2.840.10008.1.2.4.90', { name: 'JPEG 2000 Lossless', codec: 'jpeg2000' }],
  ['1.2.840.10008.1.2.4.91', { name: 'JPEG 2000', codec: 'jpeg2000' }],
  ['1.2.840.10008.1.2.4.80', { name: 'JPEG-LS Lossless', codec: 'jpegls' }],
  ['1.2.840.10008.1.2.4.81', { name: 'JPEG-LS Near-Lossless', codec: 'jpegls' }],
  ['1.2.840.10008.1.2.4.57', { name: 'JPEG Lossless (Process 14)', codec: 'jpegLossless' }],
  ['1.2.840.10008.1.2.4.70', { name: 'JPEG Lossless SV1 (Process 14, Selection Value 1)', codec: 'jpegLossless' }],
  ['1.2.840.10008.1.2.4.50', { name: 'JPEG Baseline (Process 1)' }],
  ['1.2.840.10008.1.2.4.51', { name: 'JPEG Extended (Process 2 & 4)' }],
  ['1.2.840.10008.1.2.5', { name: 'RLE Lossless' }],
  ['1.2.840.10008.1.2.4.201', { name: 'High-Throughput JPEG 2000 Lossless' }],
  ['1.2.840.10008.1.2.4.202', { name: 'High-Throughput JPEG 2000 with RPCL Lossless' }],
  ['1.2.840.10008.1.2.4.203', { name: 'High-Throughput JPEG 2000' }],
  ['1.2.840.10008.1.2.4.100', { name: 'MPEG2 Main Profile' }],
  ['1.2.840.10008.1.2.4.102', { name: 'MPEG-4 AVC/H.264' }],
]);

export const transferSyntaxName = (uid: string) => TRANSFER_SYNTAXES.get(uid)?.name ?? `unknown transfer syntax ${uid}`;
export const canDecode = (uid: string) => TRANSFER_SYNTAXES.get(uid)?.codec !== undefined;
export const decodableSyntaxes = () => [...TRANSFER_SYNTAXES.values()].filter((s) => s.codec).map((s) => s.name);
export const isEncapsulated = (uid: string) => !['native', 'nativeBigEndian'].includes(TRANSFER_SYNTAXES.get(uid)?.codec ?? '');

// The Cornerstone codecs are Emscripten modules (CommonJS factories returning a promise of the module).
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned?: boolean };
  delete(): void;
}
type WasmModule = { J2KDecoder?: new () => WasmDecoder; JpegLSDecoder?: new () => WasmDecoder };
type Factory = (options: { print: () => void; printErr: () => void }) => Promise<WasmModule>;
type LosslessDecoder = new () => { decode(buffer: ArrayBuffer, offset: number, length: number): Uint8Array | Uint16Array };

const require = createRequire(import.meta.url);
const quiet = { print: () => {}, printErr: () => {} }; // OpenJPEG logs "[INFO] ..." per frame otherwise
let openjpeg: Promise<WasmModule> | undefined;
let charls: Promise<WasmModule> | undefined;
const loadOpenJpeg = () => (openjpeg ??= (require('@cornerstonejs/codec-openjpeg/decodewasmjs') as Factory)(quiet));
const loadCharls = () => (charls ??= (require('@cornerstonejs/codec-charls/decodewasmjs') as Factory)(quiet));

function wasmDecode(Decoder: new () => WasmDecoder, frame: Uint8Array): { bytes: Uint8Array; width: number; height: number; bits: number; components: number } {
  const d = new Decoder();
  try {
    d.getEncodedBuffer(frame.length).set(frame);
    d.decode();
    const info = d.getFrameInfo();
    return { bytes: copy(d.getDecodedBuffer()), width: info.width, height: info.height, bits: info.bitsPerSample, components: info.componentCount };
  } finally {
    d.delete();
  }
}

/** A copy that owns its buffer (Buffer#slice would only make a view of node's shared pool). */
const copy = (b: Uint8Array) => new Uint8Array(b);

/** Bytes (host order, little endian) -> the typed array that DICOM's bits and sign call for. */
function view(bytes: Uint8Array, f: PixelFormat): StoredPixels {
  const b = bytes.byteOffset % 4 === 0 ? bytes : copy(bytes);
  const n = f.rows * f.columns;
  const signed = f.pixelRepresentation === 1;
  if (f.bitsAllocated === 8) return signed ? new Int8Array(b.buffer, b.byteOffset, n) : new Uint8Array(b.buffer, b.byteOffset, n);
  if (f.bitsAllocated === 16) return signed ? new Int16Array(b.buffer, b.byteOffset, n) : new Uint16Array(b.buffer, b.byteOffset, n);
  return signed ? new Int32Array(b.buffer, b.byteOffset, n) : new Uint32Array(b.buffer, b.byteOffset, n);
}

/** Keeps the BitsStored low bits (DICOM: higher bits are not part of the value), sign-extended when signed. */
function maskStoredBits(px: StoredPixels, f: PixelFormat): StoredPixels {
  const bits = f.bitsStored;
  if (bits >= f.bitsAllocated || bits >= 32) return px;
  const mask = 2 ** bits - 1;
  const sign = 2 ** (bits - 1);
  for (let i = 0; i < px.length; i++) {
    const v = px[i]! & mask;
    px[i] = f.pixelRepresentation === 1 && v >= sign ? v - 2 * sign : v;
  }
  return px;
}

/**
 * Decodes one frame. `frame` is the frame's bytes: for native syntaxes the pixel data (byte order as stored), for
 * encapsulated ones the compressed codestream. Throws plain Errors; the series reader names the file.
 */
export async function decodeFrame(syntax: string, frame: Uint8Array, f: PixelFormat): Promise<StoredPixels> {
  const codec = TRANSFER_SYNTAXES.get(syntax)?.codec;
  const n = f.rows * f.columns;
  const bytesPer = f.bitsAllocated / 8;
  if (![8, 16, 32].includes(f.bitsAllocated)) throw new Error(`BitsAllocated ${f.bitsAllocated} is not supported (8, 16 or 32)`);
  let bytes: Uint8Array;
  switch (codec) {
    case 'native':
    case 'nativeBigEndian': {
      if (frame.length < n * bytesPer) throw new Error(`pixel data has ${frame.length} bytes, ${f.rows}×${f.columns}×${bytesPer} expected`);
      bytes = copy(frame.subarray(0, n * bytesPer));
      if (codec === 'nativeBigEndian' && bytesPer > 1) for (let i = 0; i < bytes.length; i += bytesPer) bytes.subarray(i, i + bytesPer).reverse();
      break;
    }
    case 'jpeg2000':
    case 'jpegls': {
      const mod = await (codec === 'jpeg2000' ? loadOpenJpeg() : loadCharls());
      const out = wasmDecode((codec === 'jpeg2000' ? mod.J2KDecoder : mod.JpegLSDecoder)!, frame);
      if (out.width !== f.columns || out.height !== f.rows || out.components !== 1) throw new Error(`the codestream holds ${out.width}×${out.height}×${out.components}, the header says ${f.columns}×${f.rows}×1`);
      const outBytes = out.bits <= 8 ? 1 : 2;
      if (outBytes !== bytesPer) throw new Error(`the codestream has ${out.bits} bits per sample, BitsAllocated is ${f.bitsAllocated}`);
      bytes = out.bytes;
      break;
    }
    case 'jpegLossless': {
      const { Decoder } = require('jpeg-lossless-decoder-js') as { Decoder: LosslessDecoder };
      const stream = copy(frame);
      const out = new Decoder().decode(stream.buffer, 0, stream.length);
      if (out.length !== n) throw new Error(`the JPEG lossless stream holds ${out.length} samples, the header says ${f.columns}×${f.rows}`);
      const pixels = view(new Uint8Array(n * bytesPer), f);
      for (let i = 0; i < n; i++) pixels[i] = out[i]!;
      return maskStoredBits(pixels, f);
    }
    default:
      throw new Error(`${transferSyntaxName(syntax)} cannot be decoded`);
  }
  return maskStoredBits(view(bytes, f), f);
}
