// Seeded fuzzing of the three readers that take user files: images (decodeImage / imageSize), safetensors
// (parseSafetensors / readSafetensorsFile) and split files (readSplitFile). Valid files are mutated (bit flips,
// byte sets, truncations, insertions, deletions, duplications, length-field edits, format-aware edits). Every case
// must either parse or throw UserError: never another error type, never hang; memory stays bounded.
// Bounded: at most CASES cases and BUDGET_MS per reader; the seed makes a run repeatable.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, imageSize } from '../../src/data/image.ts';
import { readSplitFile } from '../../src/data/split.ts';
import { UserError } from '../../src/errors.ts';
import { encodeSafetensors, parseSafetensors, readSafetensorsFile, toFloat32, type SafetensorsFile } from '../../src/io/safetensors.ts';
import { Rng } from '../../src/util/rng.ts';
import { crc32, writePng } from '../support/png.ts';
import { diskPixels, tempDir } from './support.ts';

/** 'parsed' when every tensor of the file converts, 'refused' on a UserError; any other error fails the test. */
const outcome = (file: Promise<SafetensorsFile>): Promise<'parsed' | 'refused'> =>
  file.then(
    (f) => {
      for (const t of f.tensors.values()) toFloat32(t);
      return 'parsed' as const;
    },
    (e: unknown) => {
      if (!(e instanceof UserError)) throw e;
      return 'refused' as const;
    },
  );

const SEED = Number(process.env.FUZZ_SEED ?? 20240601);
const CASES = Number(process.env.FUZZ_CASES ?? 300);
const BUDGET_MS = Number(process.env.FUZZ_BUDGET_MS ?? 15_000);
const CASE_TIMEOUT_MS = 5_000;
const RSS_GROWTH_LIMIT = 600 * 2 ** 20;

type Mutator = (b: Uint8Array, r: Rng) => Uint8Array;

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

const generic: Record<string, Mutator> = {
  flip(b, r) {
    const out = b.slice();
    for (let n = 1 + r.int(2); n > 0; n--) out[r.int(out.length)]! ^= 1 << r.int(8);
    return out;
  },
  set(b, r) {
    const out = b.slice();
    for (let n = 1 + r.int(4); n > 0; n--) out[r.int(out.length)] = r.int(256);
    return out;
  },
  truncate: (b, r) => b.slice(0, r.int(b.length)),
  insert(b, r) {
    const at = r.int(b.length + 1);
    const extra = Uint8Array.from({ length: 1 + r.int(64) }, () => r.int(256));
    return concat(b.subarray(0, at), extra, b.subarray(at));
  },
  remove(b, r) {
    const at = r.int(b.length);
    return concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(64))));
  },
  duplicate(b, r) {
    const from = r.int(b.length);
    const piece = b.subarray(from, from + 1 + r.int(128));
    const at = r.int(b.length + 1);
    return concat(b.subarray(0, at), piece, b.subarray(at));
  },
  interesting(b, r) {
    const out = Buffer.from(b);
    const v = INTERESTING[r.int(INTERESTING.length)]!;
    const width = [1, 2, 4][r.int(3)]!;
    const at = r.int(Math.max(1, out.length - width));
    if (at + width <= out.length) {
      if (width === 1) out[at] = v & 0xff;
      else if (width === 2) r.int(2) ? out.writeUInt16BE(v & 0xffff, at) : out.writeUInt16LE(v & 0xffff, at);
      else r.int(2) ? out.writeUInt32BE(v >>> 0, at) : out.writeUInt32LE(v >>> 0, at);
    }
    return out;
  },
};

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** PNG chunks: offset of each length field, with type and data length. */
function pngChunks(b: Uint8Array): { at: number; type: string; length: number }[] {
  const out: { at: number; type: string; length: number }[] = [];
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  for (let at = 8; at + 8 <= v.length; ) {
    const length = v.readUInt32BE(at);
    out.push({ at, type: v.toString('latin1', at + 4, at + 8), length });
    at += 12 + length;
  }
  return out;
}

/** PNG-aware edits: a chunk's length field, IHDR fields (size, depth, colour type), then the CRC fixed or not. */
const pngEdit: Mutator = (b, r) => {
  const out = Buffer.from(b);
  const chunks = pngChunks(out);
  if (chunks.length === 0) return out;
  const c = chunks[r.int(chunks.length)]!;
  const ihdr = chunks.find((x) => x.type === 'IHDR');
  const choice = r.int(3);
  if (choice === 0 || !ihdr) out.writeUInt32BE([0, c.length + 1, Math.max(0, c.length - 1), 0x7fffffff, 0xffffffff, r.nextU32()][r.int(6)]! >>> 0, c.at);
  else if (choice === 1) {
    // a size claim: small, large, or at the pixel limit (CRC fixed so the decoder believes it)
    const dims = [1, 2, 31, 8192, 8193, 65535, 100_000, 0x7fffffff, r.int(20_000)];
    out.writeUInt32BE(dims[r.int(dims.length)]!, ihdr.at + 8);
    out.writeUInt32BE(dims[r.int(dims.length)]!, ihdr.at + 12);
  } else {
    out[ihdr.at + 8 + 8 + r.int(5)] = [0, 1, 2, 3, 4, 6, 8, 16, 255][r.int(9)]!;
  }
  if (r.int(2) && ihdr && ihdr.at + 12 + 13 + 4 <= out.length) out.writeUInt32BE(crc32(out.subarray(ihdr.at + 4, ihdr.at + 8 + 13)), ihdr.at + 8 + 13);
  return out;
};

/** JPEG-aware edits: a marker segment's length, or the SOF size fields. */
const jpegEdit: Mutator = (b, r) => {
  const out = Buffer.from(b);
  const markers: number[] = [];
  for (let i = 2; i + 4 < out.length; i++) if (out[i] === 0xff && out[i + 1]! >= 0xc0 && out[i + 1]! <= 0xfe && out[i + 1] !== 0xff) markers.push(i);
  if (markers.length === 0) return out;
  const at = markers[r.int(markers.length)]!;
  if (out[at + 1] === 0xc0 && r.int(2)) {
    out.writeUInt16BE([0, 1, 8192, 65535][r.int(4)]!, at + 5);
    out.writeUInt16BE([0, 1, 8192, 65535][r.int(4)]!, at + 7);
  } else out.writeUInt16BE([0, 1, 2, 0xffff, r.int(0x10000)][r.int(5)]!, at + 2);
  return out;
};

interface Outcome {
  parsed: number;
  refused: number;
  failures: string[];
  cases: number;
  ms: number;
  rssGrowth: number;
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`HANG: no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `cases` mutated inputs through `read`. A case passes when every read resolves or rejects with UserError.
 * Failures are described with the case number, the mutations and the error, so a run can be replayed.
 */
async function fuzz(name: string, seeds: Uint8Array[], mutators: Record<string, Mutator>, read: (bytes: Uint8Array, i: number) => Promise<void>): Promise<Outcome> {
  const r = new Rng(SEED ^ [...name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619), 2166136261));
  const names = Object.keys(mutators);
  const start = performance.now();
  const rss0 = process.memoryUsage.rss();
  let rssMax = rss0;
  const o: Outcome = { parsed: 0, refused: 0, failures: [], cases: 0, ms: 0, rssGrowth: 0 };
  for (let i = 0; i < CASES && performance.now() - start < BUDGET_MS; i++) {
    let bytes = seeds[r.int(seeds.length)]!;
    const applied: string[] = [];
    for (let n = 1 + r.int(2); n > 0 && bytes.length > 0; n--) {
      const m = names[r.int(names.length)]!;
      applied.push(m);
      bytes = mutators[m]!(bytes, r);
    }
    o.cases++;
    try {
      await withTimeout(read(bytes, i), CASE_TIMEOUT_MS);
      o.parsed++;
    } catch (e) {
      if (e instanceof UserError) o.refused++;
      else o.failures.push(`case ${i} (${applied.join('+')}, ${bytes.length} bytes): ${(e as Error)?.constructor?.name}: ${(e as Error)?.message ?? e}`);
    }
    rssMax = Math.max(rssMax, process.memoryUsage.rss());
  }
  o.ms = performance.now() - start;
  o.rssGrowth = rssMax - rss0;
  console.log(`fuzz ${name}: ${o.cases} cases in ${(o.ms / 1000).toFixed(1)} s: ${o.parsed} parsed, ${o.refused} refused (UserError), ${o.failures.length} failures; peak RSS +${(o.rssGrowth / 2 ** 20).toFixed(0)} MB`);
  return o;
}

function expectClean(o: Outcome): void {
  expect(o.failures, o.failures.slice(0, 10).join('\n')).toEqual([]);
  expect(o.cases).toBeGreaterThanOrEqual(50);
  expect(o.rssGrowth).toBeLessThan(RSS_GROWTH_LIMIT);
}

let dir: string;
beforeAll(() => {
  dir = tempDir('mobileutr-fuzz-');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fuzz', () => {
  it('image reader: decodeImage and imageSize parse or throw UserError', async () => {
    const rgb = { raw: { width: 96, height: 61, channels: 3 as const } };
    const px = diskPixels(96, 61).map((v, i) => (v + ((i * 2654435761) >>> 27)) & 255); // texture: the data outweighs the headers
    const seeds: Uint8Array[] = [
      await sharp(px, rgb).png().toBuffer(),
      await sharp(px, rgb).jpeg({ quality: 80 }).toBuffer(),
      await sharp(px, rgb).jpeg({ progressive: true }).toBuffer(),
      await sharp(px, rgb).webp().toBuffer(),
      await sharp(px, rgb).webp({ lossless: true }).toBuffer(),
      await sharp(px, rgb).tiff({ compression: 'lzw' }).toBuffer(),
      writePng({ width: 9, height: 7, bitDepth: 16, colorType: 0, samples: Array.from({ length: 63 }, (_, i) => i * 1000) }),
      writePng({ width: 9, height: 7, bitDepth: 4, colorType: 3, samples: Array.from({ length: 63 }, (_, i) => i % 3), palette: [[0, 0, 0], [255, 255, 255], [9, 99, 199]] }),
      writePng({ width: 5, height: 5, bitDepth: 8, colorType: 4, samples: Array.from({ length: 50 }, (_, i) => i * 5) }),
    ];
    const o = await fuzz('image', seeds, { ...generic, png: pngEdit, jpeg: jpegEdit }, async (bytes) => {
      const size = await imageSize(bytes).then(
        () => true,
        (e: unknown) => {
          if (!(e instanceof UserError)) throw e;
          return false;
        },
      );
      const rgbOut = await decodeImage(bytes).catch((e: unknown) => {
        if (!(e instanceof UserError)) throw e;
        return undefined;
      });
      if (rgbOut) {
        // a decoded image is well formed
        if (rgbOut.channels !== 3 || rgbOut.pixels.length !== rgbOut.width * rgbOut.height * 3) throw new Error(`malformed decode ${rgbOut.width}x${rgbOut.height}x${rgbOut.channels}`);
        if (!size) throw new Error('decoded, but its header was refused');
      }
      await decodeImage(bytes, { grey: true, size: 32, kernel: 'nearest' });
    });
    expectClean(o);
    expect(o.refused).toBeGreaterThan(0);
  });

  it('safetensors: parseSafetensors and readSafetensorsFile agree, and parse or throw UserError', async () => {
    const small = encodeSafetensors(
      [
        ['conv.weight', { shape: [2, 1, 3, 3], data: Float32Array.from({ length: 18 }, (_, i) => i / 7) }],
        ['bn.num_batches_tracked', { dtype: 'I64', shape: [], data: BigInt64Array.from([12n]) }],
        ['head.bias', { shape: [1], data: Float32Array.from([0.5]) }],
        ['empty', { shape: [0, 4], data: new Float32Array(0) }],
      ],
      { format: 'pt', model: 'mobileutr', size: '32' },
    );
    // other dtypes, written by hand
    const header = JSON.stringify({ h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, b: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] }, u: { dtype: 'BOOL', shape: [2], data_offsets: [6, 8] } });
    const other = new Uint8Array(8 + header.length + 8);
    new DataView(other.buffer).setBigUint64(0, BigInt(header.length), true);
    other.set(new TextEncoder().encode(header), 8);
    other.set([0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f, 1, 0], 8 + header.length);

    /** Length-field and header-JSON edits: numbers, dtypes, brackets. */
    const structural: Record<string, Mutator> = {
      lengthField(b, r) {
        const out = Buffer.from(b);
        if (out.length < 8) return out;
        const n = out.readBigUInt64LE(0);
        const choices = [0n, 1n, n + 1n, n - 1n, n + 8n, BigInt(out.length), BigInt(out.length - 8), 2n ** 63n, 2n ** 64n - 1n, BigInt(r.nextU32()), 16n * 2n ** 20n + 1n];
        const v = choices[r.int(choices.length)]!;
        out.writeBigUInt64LE(BigInt.asUintN(64, v), 0);
        return out;
      },
      headerNumber(b, r) {
        const text = Buffer.from(b).toString('latin1');
        const numbers = [...text.matchAll(/\d+/g)].filter((m) => m.index! > 8 && m.index! < 8 + Number(Buffer.from(b).readBigUInt64LE(0) & 0xffffffn));
        if (numbers.length === 0) return b;
        const m = numbers[r.int(numbers.length)]!;
        const v = ['0', '1', '-1', '4294967296', '9007199254740993', '1e308', '0.5', String(r.nextU32()), '18446744073709551615'][r.int(9)]!;
        return Buffer.from(text.slice(0, m.index) + v + text.slice(m.index! + m[0].length), 'latin1');
      },
      headerToken(b, r) {
        const text = Buffer.from(b).toString('latin1');
        const swaps: [RegExp, string][] = [
          [/"F32"/, '"F8"'],
          [/"I64"/, '"F64"'],
          [/"shape"/, '"shap"'],
          [/\[/, '{'],
          [/\]/, ''],
          [/"data_offsets":\[/, '"data_offsets":[0,'],
          [/"__metadata__":\{/, '"__metadata__":{"x":1,'],
        ];
        const [re, to] = swaps[r.int(swaps.length)]!;
        return Buffer.from(text.replace(re, to), 'latin1');
      },
    };
    const o = await fuzz('safetensors', [small, other], { ...generic, ...structural, ...structural }, async (bytes, i) => {
      const path = join(dir, `f${i}.safetensors`);
      writeFileSync(path, bytes);
      const inMemory = await outcome(Promise.resolve().then(() => parseSafetensors(bytes, path)));
      const fromFile = await outcome(readSafetensorsFile(path));
      // the file reader has a lower header limit (16 MiB vs 100 MiB) but no fuzzed file reaches it
      if (inMemory !== fromFile) throw new Error(`parseSafetensors ${inMemory} but readSafetensorsFile ${fromFile}`);
      if (fromFile === 'refused') throw new UserError('refused');
    });
    expectClean(o);
    expect(o.parsed).toBeGreaterThan(0);
    expect(o.refused).toBeGreaterThan(0);
  });

  it('split files: readSplitFile parses or throws UserError, and never returns unknown or repeated ids', async () => {
    const known = ['benign_001', 'benign_002', 'malignant_010', 'normal_7', 'a.b', 'x'];
    const seeds = [
      'benign_001\nbenign_002\nmalignant_010\n',
      '# val split, seed 41\nbenign_001.png\n\n  normal_7  \r\nx # trailing comment\na.b\n',
      'malignant_010\r\nbenign_002.jpg\r\n',
    ].map((t) => new TextEncoder().encode(t));
    const textual: Record<string, Mutator> = {
      dupLine(b, r) {
        const lines = new TextDecoder().decode(b).split('\n');
        const l = lines[r.int(lines.length)]!;
        lines.splice(r.int(lines.length + 1), 0, l);
        return new TextEncoder().encode(lines.join('\n'));
      },
      oddLine(b, r) {
        const odd = ['\uFEFF', '\0', 'zzz', '#', '\r', ' '.repeat(100), 'é'.repeat(3), 'x'.repeat(20_000), '\u2028', 'benign_001.PNG', '..', '\ud800'][r.int(12)]!;
        const lines = new TextDecoder().decode(b).split('\n');
        lines.splice(r.int(lines.length + 1), 0, odd);
        return new TextEncoder().encode(lines.join('\n'));
      },
      invalidUtf8(b, r) {
        const out = b.slice();
        out[r.int(out.length)] = [0xff, 0xc3, 0x80, 0xed][r.int(4)]!;
        return out;
      },
    };
    const o = await fuzz('split', seeds, { ...generic, ...textual }, async (bytes, i) => {
      const path = join(dir, `split${i}.txt`);
      writeFileSync(path, bytes);
      const ids = await readSplitFile(path, known);
      if (ids.some((id) => !known.includes(id))) throw new Error(`unknown id returned: ${ids}`);
      if (new Set(ids).size !== ids.length) throw new Error(`repeated id returned: ${ids}`);
    });
    expectClean(o);
    expect(o.parsed).toBeGreaterThan(0);
    expect(o.refused).toBeGreaterThan(0);
  });
});
