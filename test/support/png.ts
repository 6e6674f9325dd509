/**
 * A minimal PNG writer for the reliability tests: it writes exactly the bytes asked for (bit depth, colour type,
 * palette, declared size), which an encoder such as sharp would not (it picks its own), so the tests control
 * 16-bit, palette and lying headers precisely.
 */
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface RawPng {
  width: number;
  height: number;
  /** 1, 2, 4, 8 or 16 */
  bitDepth: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA */
  colorType: number;
  /** Samples in row order, one number per sample (for palette: the index). */
  samples: ArrayLike<number>;
  /** Palette entries [r, g, b] for colour type 3. */
  palette?: [number, number, number][];
  /** Declared size in IHDR when it should differ from the real one (a lying header). */
  declared?: { width: number; height: number };
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Encodes samples as a PNG with filter 0 on every row. */
export function writePng(p: RawPng): Buffer {
  const channels = CHANNELS[p.colorType]!;
  const rowBits = p.width * channels * p.bitDepth;
  const rowBytes = Math.ceil(rowBits / 8);
  const raw = Buffer.alloc(p.height * (rowBytes + 1));
  for (let y = 0; y < p.height; y++) {
    const row = raw.subarray(y * (rowBytes + 1) + 1, (y + 1) * (rowBytes + 1));
    for (let i = 0; i < p.width * channels; i++) {
      const v = p.samples[y * p.width * channels + i]!;
      if (p.bitDepth === 16) row.writeUInt16BE(v, i * 2);
      else if (p.bitDepth === 8) row[i] = v;
      else {
        const bit = i * p.bitDepth;
        row[bit >> 3]! |= v << (8 - p.bitDepth - (bit & 7));
      }
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(p.declared?.width ?? p.width, 0);
  ihdr.writeUInt32BE(p.declared?.height ?? p.height, 4);
  ihdr[8] = p.bitDepth;
  ihdr[9] = p.colorType;
  const parts = [PNG_SIGNATURE, chunk('IHDR', ihdr)];
  if (p.palette) parts.push(chunk('PLTE', Uint8Array.from(p.palette.flat())));
  parts.push(chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0)));
  return Buffer.concat(parts);
}

/**
 * A "PNG bomb": a few hundred bytes whose header claims width × height pixels (the data is one compressed
 * block of zeros, far too short for the claim).
 */
export function pngBomb(width: number, height: number, colorType = 2): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = colorType;
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(64 * 1024))), chunk('IEND', new Uint8Array(0))]);
}

/** A small JPEG whose SOF0 header claims width × height (at most 65535 each). */
export async function jpegBomb(width: number, height: number): Promise<Buffer> {
  const sharp = (await import('sharp')).default;
  const jpg = Buffer.from(await sharp({ create: { width: 16, height: 16, channels: 3, background: '#808080' } }).jpeg().toBuffer());
  const sof = jpg.indexOf(Buffer.from([0xff, 0xc0]));
  jpg.writeUInt16BE(height, sof + 5);
  jpg.writeUInt16BE(width, sof + 7);
  return jpg;
}

/** A small lossy WebP whose VP8 frame header claims 16383 × 16383. */
export async function webpBomb(): Promise<Buffer> {
  const sharp = (await import('sharp')).default;
  const webp = Buffer.from(await sharp({ create: { width: 16, height: 16, channels: 3, background: '#808080' } }).webp().toBuffer());
  const start = webp.indexOf(Buffer.from([0x9d, 0x01, 0x2a]));
  webp.writeUInt16LE(0x3fff, start + 3);
  webp.writeUInt16LE(0x3fff, start + 5);
  return webp;
}

/** A small uncompressed TIFF whose ImageWidth / ImageLength tags claim width × height. */
export async function tiffBomb(width: number, height: number): Promise<Buffer> {
  const sharp = (await import('sharp')).default;
  const tif = Buffer.from(await sharp({ create: { width: 16, height: 16, channels: 3, background: '#808080' } }).tiff({ compression: 'none' }).toBuffer());
  const little = tif.toString('latin1', 0, 2) === 'II';
  const u16 = (o: number) => (little ? tif.readUInt16LE(o) : tif.readUInt16BE(o));
  const u32 = (o: number) => (little ? tif.readUInt32LE(o) : tif.readUInt32BE(o));
  const ifd = u32(4);
  for (let i = 0; i < u16(ifd); i++) {
    const e = ifd + 2 + i * 12;
    const tag = u16(e);
    if (tag !== 256 && tag !== 257) continue;
    const value = tag === 256 ? width : height;
    if (u16(e + 2) === 3) little ? tif.writeUInt16LE(Math.min(value, 65535), e + 8) : tif.writeUInt16BE(Math.min(value, 65535), e + 8);
    else little ? tif.writeUInt32LE(value, e + 8) : tif.writeUInt32BE(value, e + 8);
  }
  return tif;
}
