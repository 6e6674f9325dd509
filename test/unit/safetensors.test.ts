import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import {
  encodeSafetensors,
  parseSafetensors,
  readSafetensorsFile,
  toFloat32,
  writeSafetensorsFile,
  type StoredTensor,
} from '../../src/io/safetensors.ts';

/** Builds a file from a header (object or raw JSON text) and data bytes; `declaredLength` overrides N. */
function rawFile(header: unknown, data: ArrayLike<number> = [], declaredLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Parses `file` and returns the UserError message it throws. */
function parseError(file: Uint8Array): string {
  try {
    parseSafetensors(file, 'model.safetensors');
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    const message = (err as Error).message;
    expect(message.startsWith('model.safetensors: ')).toBe(true);
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('expected parseSafetensors to throw');
}

function stored(dtype: StoredTensor['dtype'], shape: number[], bytes: number[]): StoredTensor {
  return { dtype, shape, bytes: new Uint8Array(bytes) };
}

function u16le(values: number[]): number[] {
  return values.flatMap((v) => [v & 0xff, v >> 8]);
}

const tmpRoot = mkdtempSync(join(tmpdir(), 'safetensors-test-'));
afterAll(() => rm(tmpRoot, { recursive: true, force: true }));

describe('encode / parse round trip', () => {
  it('round-trips F32, I64, a scalar and metadata in insertion order', () => {
    const weight = new Float32Array([1.5, -2, 3.25, 0, 1e-30, -0.125]);
    const ids = new BigInt64Array([-1n, 0n, 9007199254740993n]);
    const file = encodeSafetensors(
      [
        ['z.weight', { shape: [2, 3], data: weight }],
        ['a.ids', { dtype: 'I64', shape: [3], data: ids }],
        ['10', { shape: [], data: new Float32Array([42]) }],
      ],
      { format: 'pt', note: 'ünïcode' },
    );

    const headerLength = Number(new DataView(file.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const headerText = new TextDecoder().decode(file.subarray(8, 8 + headerLength));
    expect(headerText.indexOf('"z.weight"')).toBeLessThan(headerText.indexOf('"a.ids"'));
    expect(headerText.indexOf('"a.ids"')).toBeLessThan(headerText.indexOf('"10"'));
    expect(headerText).toMatch(/} *$/);

    const parsed = parseSafetensors(file);
    expect(parsed.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    const w = parsed.tensors.get('z.weight')!;
    expect(w.dtype).toBe('F32');
    expect(w.shape).toEqual([2, 3]);
    expect(w.bytes.buffer).toBe(file.buffer); // a view, not a copy
    expect(Array.from(toFloat32(w))).toEqual(Array.from(weight));

    const i = parsed.tensors.get('a.ids')!;
    expect(i.dtype).toBe('I64');
    expect(i.bytes.byteOffset - 8 - headerLength).toBe(24); // data laid out in insertion order
    expect(new BigInt64Array(i.bytes.slice().buffer)).toEqual(ids);
    expect(Array.from(toFloat32(i))).toEqual([-1, 0, 9007199254740992]);

    const scalar = parsed.tensors.get('10')!;
    expect(scalar.shape).toEqual([]);
    expect(Array.from(toFloat32(scalar))).toEqual([42]);
  });

  it('infers I64 from a BigInt64Array, omits metadata when none is given, handles empty tensors', () => {
    const file = encodeSafetensors([
      ['ids', { shape: [1], data: new BigInt64Array([7n]) }],
      ['empty', { shape: [0, 4], data: new Float32Array(0) }],
    ]);
    const parsed = parseSafetensors(file);
    expect(parsed.metadata).toEqual({});
    expect(parsed.tensors.get('ids')!.dtype).toBe('I64');
    expect(toFloat32(parsed.tensors.get('empty')!).length).toBe(0);
  });

  it('accepts a Buffer input and still returns plain Uint8Array views', () => {
    const file = Buffer.from(encodeSafetensors([['x', { shape: [2], data: new Float32Array([1, 2]) }]]));
    const x = parseSafetensors(file).tensors.get('x')!;
    expect(Buffer.isBuffer(x.bytes)).toBe(false);
    expect(Array.from(toFloat32(x))).toEqual([1, 2]);
  });

  it('rejects bad input to encode', () => {
    const cases: [Parameters<typeof encodeSafetensors>, RegExp][] = [
      [[[['t', { shape: [2, 2], data: new Float32Array(3) }]]], /tensor "t" has 3 elements but shape \[2,2\] needs 4/],
      [[[['t', { shape: [-1], data: new Float32Array(1) }]]], /tensor "t" has shape \[-1\]/],
      [[[['t', { dtype: 'I64', shape: [1], data: new Float32Array(1) }]]], /dtype I64 but data is not a BigInt64Array/],
      [[[['t', { dtype: 'F32', shape: [1], data: new BigInt64Array(1) }]]], /dtype F32 but data is not a Float32Array/],
      [[[['t', { shape: [1], data: new Float32Array(1) }], ['t', { shape: [1], data: new Float32Array(1) }]]], /"t" appears twice/],
      [[[['__metadata__', { shape: [1], data: new Float32Array(1) }]]], /cannot be used as a tensor name/],
      [[[], { a: 1 as unknown as string }], /__metadata__ value for "a" is not a string/],
    ];
    for (const [args, pattern] of cases) {
      expect(() => encodeSafetensors(...args)).toThrow(UserError);
      expect(() => encodeSafetensors(...args)).toThrow(pattern);
    }
  });
});

describe('toFloat32', () => {
  it('decodes F16 bit patterns', () => {
    const bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x3555, 0x8000, 0x7c00, 0xfc00, 0x7e00];
    const out = toFloat32(stored('F16', [bits.length], u16le(bits)));
    expect(Array.from(out.subarray(0, 9))).toEqual([
      1, -2, 65504, 2 ** -24, 2 ** -14, 0.333251953125, -0, Infinity, -Infinity,
    ]);
    expect(Object.is(out[6], -0)).toBe(true);
    expect(out[9]).toBeNaN();
  });

  it('decodes BF16 bit patterns', () => {
    const bits = [0x3f80, 0xc040, 0x4049, 0x0000, 0x7f80, 0xff80, 0x3e80, 0x7fc0];
    const out = toFloat32(stored('BF16', [bits.length], u16le(bits)));
    expect(Array.from(out.subarray(0, 7))).toEqual([1, -3, 3.140625, 0, Infinity, -Infinity, 0.25]);
    expect(out[7]).toBeNaN();
  });

  it('converts integer, bool and F64 dtypes', () => {
    const f64 = new Uint8Array(new Float64Array([0.5, -1e10]).buffer);
    expect(Array.from(toFloat32(stored('F64', [2], Array.from(f64))))).toEqual([0.5, -1e10]);
    const i32 = new Uint8Array(new Int32Array([-5, 123456]).buffer);
    expect(Array.from(toFloat32(stored('I32', [2], Array.from(i32))))).toEqual([-5, 123456]);
    expect(Array.from(toFloat32(stored('I16', [2], u16le([0xffff, 300]))))).toEqual([-1, 300]);
    expect(Array.from(toFloat32(stored('I8', [2], [0xff, 0x7f])))).toEqual([-1, 127]);
    expect(Array.from(toFloat32(stored('U8', [2], [0xff, 0x7f])))).toEqual([255, 127]);
    expect(Array.from(toFloat32(stored('BOOL', [3], [0, 1, 2])))).toEqual([0, 1, 1]);
  });

  it('reads tensors at unaligned offsets and returns a copy', () => {
    const f32 = Array.from(new Uint8Array(new Float32Array([1.25, -7]).buffer));
    const i64 = Array.from(new Uint8Array(new BigInt64Array([-3n]).buffer));
    const file = rawFile(
      {
        pad: { dtype: 'U8', shape: [1], data_offsets: [0, 1] },
        f: { dtype: 'F32', shape: [2], data_offsets: [1, 9] },
        i: { dtype: 'I64', shape: [], data_offsets: [9, 17] },
      },
      [9, ...f32, ...i64],
    );
    const parsed = parseSafetensors(file);
    const f = parsed.tensors.get('f')!;
    const out = toFloat32(f);
    expect(Array.from(out)).toEqual([1.25, -7]);
    out[0] = 99;
    expect(Array.from(toFloat32(f))).toEqual([1.25, -7]);
    expect(Array.from(toFloat32(parsed.tensors.get('i')!))).toEqual([-3]);
  });
});

describe('hostile files', () => {
  const okEntry = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const eightBytes = new Array(8).fill(0);

  it('accepts a header padded with spaces', () => {
    const file = rawFile(JSON.stringify({ t: okEntry }) + '     ', eightBytes);
    expect(parseSafetensors(file).tensors.get('t')!.shape).toEqual([2]);
  });

  it('rejects a file shorter than 8 bytes', () => {
    expect(parseError(new Uint8Array(5))).toMatch(/5 bytes, too short/);
  });

  it('rejects a header length beyond the file', () => {
    expect(parseError(rawFile({}, [], 1000n))).toMatch(/header length 1000 exceeds the 2 bytes/);
  });

  it('rejects a header length over 100 MiB without allocating it', () => {
    expect(parseError(rawFile({}, [], 200n * 1024n * 1024n))).toMatch(/100 MiB/);
    expect(parseError(rawFile({}, [], 2n ** 64n - 1n))).toMatch(/header length 18446744073709551615 exceeds/);
  });

  it('rejects a header that is not UTF-8', () => {
    const file = rawFile('{}');
    file[9] = 0xff;
    expect(parseError(file)).toMatch(/not valid UTF-8/);
  });

  it('rejects a header that is not JSON or not an object', () => {
    expect(parseError(rawFile('{"t": '))).toMatch(/not valid JSON/);
    expect(parseError(rawFile('[1,2]'))).toMatch(/not an object/);
    expect(parseError(rawFile('null'))).toMatch(/not an object/);
    expect(parseError(rawFile('42'))).toMatch(/not an object/);
  });

  it('rejects a tensor entry that is not an object', () => {
    expect(parseError(rawFile({ t: [1] }))).toMatch(/tensor "t" entry is not an object/);
  });

  it('rejects an unknown dtype', () => {
    expect(parseError(rawFile({ t: { ...okEntry, dtype: 'F8_E4M3' } }, eightBytes))).toMatch(
      /tensor "t" has unknown dtype "F8_E4M3"/,
    );
    expect(parseError(rawFile({ t: { ...okEntry, dtype: 'toString' } }, eightBytes))).toMatch(/unknown dtype/);
  });

  it('rejects bad shapes', () => {
    for (const shape of [3, [-1], [1.5], ['2'], [2 ** 53], null]) {
      expect(parseError(rawFile({ t: { ...okEntry, shape } }, eightBytes))).toMatch(/tensor "t" has shape .* not an array/);
    }
  });

  it('rejects bad data_offsets', () => {
    for (const offsets of [[0], [0, 8, 9], [8, 0], [0, 'x'], [-1, 8], [0.5, 8], 'x']) {
      expect(parseError(rawFile({ t: { ...okEntry, data_offsets: offsets } }, eightBytes))).toMatch(
        /tensor "t" has data_offsets .* not two non-negative integers/,
      );
    }
  });

  it('rejects data_offsets beyond the data buffer', () => {
    const file = rawFile({ t: { dtype: 'F32', shape: [2 ** 40], data_offsets: [0, 2 ** 42] } }, eightBytes);
    expect(parseError(file)).toMatch(/tensor "t" has data_offsets \[0, 4398046511104\] but the data buffer is only 8 bytes/);
  });

  it('rejects a byte size that does not match dtype and shape', () => {
    const file = rawFile({ 'head.weight': { dtype: 'F32', shape: [1, 16, 1, 1], data_offsets: [0, 12] } }, new Array(12).fill(0));
    expect(parseError(file)).toBe(
      'model.safetensors: tensor "head.weight" has data_offsets [0, 12] but dtype F32 and shape [1,16,1,1] need 64 bytes',
    );
    const huge = rawFile({ t: { dtype: 'F64', shape: [2 ** 52, 2 ** 52], data_offsets: [0, 8] } }, eightBytes);
    expect(parseError(huge)).toMatch(/need 162259276829213363391578010288128 bytes/);
  });

  it('rejects overlapping tensors', () => {
    const file = rawFile(
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
      },
      eightBytes,
    );
    expect(parseError(file)).toMatch(/tensor "b" data_offsets \[4, 8\] overlap tensor "a" data_offsets \[0, 8\]/);
    const empty = rawFile(
      { a: okEntry, e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] } },
      eightBytes,
    );
    expect(parseSafetensors(empty).tensors.size).toBe(2); // empty ranges overlap nothing
  });

  it('rejects metadata that is not an object of strings', () => {
    expect(parseError(rawFile({ __metadata__: { a: 'x', b: 1 } }))).toMatch(/__metadata__ value for "b" is not a string/);
    expect(parseError(rawFile({ __metadata__: ['x'] }))).toMatch(/__metadata__ is not an object/);
  });

  it('keeps a "__proto__" metadata key as plain data', () => {
    const { metadata } = parseSafetensors(rawFile('{"__metadata__": {"__proto__": "x"}}'));
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
    expect(Object.keys(metadata)).toEqual(['__proto__']);
  });
});

describe('files', () => {
  it('writes atomically, replacing an existing file and leaving no temp file', async () => {
    const dir = join(tmpRoot, 'atomic');
    await mkdir(dir);
    const path = join(dir, 'model.safetensors');
    await writeFile(path, 'old contents');
    await writeSafetensorsFile(path, [['w', { shape: [2], data: new Float32Array([3, 4]) }]], { v: '2' });
    expect(await readdir(dir)).toEqual(['model.safetensors']);
    const parsed = await readSafetensorsFile(path);
    expect(parsed.metadata).toEqual({ v: '2' });
    expect(Array.from(toFloat32(parsed.tensors.get('w')!))).toEqual([3, 4]);
    expect(new Uint8Array(await readFile(path))).toEqual(
      encodeSafetensors([['w', { shape: [2], data: new Float32Array([3, 4]) }]], { v: '2' }),
    );
  });

  it('removes the temp file when the final rename fails', async () => {
    const dir = join(tmpRoot, 'rename-fails');
    await mkdir(join(dir, 'model.safetensors'), { recursive: true }); // a directory is in the way
    const write = writeSafetensorsFile(join(dir, 'model.safetensors'), [['w', { shape: [], data: new Float32Array([1]) }]]);
    await expect(write).rejects.toThrow(UserError);
    await expect(write).rejects.toThrow(/model\.safetensors: cannot write file/);
    expect(await readdir(dir)).toEqual(['model.safetensors']);
  });

  it('names the path when encoding fails and writes nothing', async () => {
    const dir = join(tmpRoot, 'encode-fails');
    await mkdir(dir);
    const path = join(dir, 'bad.safetensors');
    await expect(writeSafetensorsFile(path, [['w', { shape: [2], data: new Float32Array(1) }]])).rejects.toThrow(
      `${path}: tensor "w" has 1 elements but shape [2] needs 2`,
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('reports a missing file', async () => {
    const path = join(tmpRoot, 'nope.safetensors');
    await expect(readSafetensorsFile(path)).rejects.toThrow(UserError);
    await expect(readSafetensorsFile(path)).rejects.toThrow(`${path}: file not found`);
  });

  it('uses the path as the error source when parsing', async () => {
    const path = join(tmpRoot, 'short.safetensors');
    await writeFile(path, new Uint8Array(3));
    await expect(readSafetensorsFile(path)).rejects.toThrow(`${path}: file is 3 bytes`);
  });
});

const hasTorch = (() => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import safetensors, torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('cross-check with the Python safetensors package', () => {
  it.skipIf(!hasTorch)('reads what we write and writes what we read', async () => {
    const ours = join(tmpRoot, 'ours.safetensors');
    const theirs = join(tmpRoot, 'theirs.safetensors');
    await writeSafetensorsFile(
      ours,
      [
        ['w', { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }],
        ['ids', { shape: [2], data: new BigInt64Array([5n, -6n]) }],
      ],
      { k: 'v' },
    );
    const script = `
import sys, torch
from safetensors import safe_open
from safetensors.torch import save_file
with safe_open(sys.argv[1], "pt") as f:
    assert f.metadata() == {"k": "v"}, f.metadata()
    assert f.get_tensor("w").tolist() == [[1, 2], [3, 4]]
    assert f.get_tensor("ids").tolist() == [5, -6]
save_file({"h": torch.tensor([1.0, -2.0, 0.5], dtype=torch.float16),
           "b": torch.tensor([1.0, 3.140625], dtype=torch.bfloat16)}, sys.argv[2], {"m": "n"})
`;
    execFileSync('/usr/bin/python3', ['-c', script, ours, theirs]);
    const parsed = await readSafetensorsFile(theirs);
    expect(parsed.metadata).toEqual({ m: 'n' });
    expect(Array.from(toFloat32(parsed.tensors.get('h')!))).toEqual([1, -2, 0.5]);
    expect(Array.from(toFloat32(parsed.tensors.get('b')!))).toEqual([1, 3.140625]);
  });
});
