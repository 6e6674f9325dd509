// Hostile weights files: a safetensors header that lies about sizes or offsets, a giant header, an ONNX model or
// random bytes given as --weights. Each is refused with a one-line message, quickly, without a large allocation.
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { encodeSafetensors, MAX_FILE_HEADER_BYTES, readSafetensorsFile } from '../../src/io/safetensors.ts';
import { createModel } from '../../src/models/model.ts';
import { loadWeights, saveWeights, stateDictTensors } from '../../src/models/weights.ts';
import { cliAll, diskPng, expectCleanFailure, goodDataset, put, tempDir } from './support.ts';

let dir: string;
const p = (name: string) => join(dir, name);

/** A safetensors file from a header object (or text) and a data buffer, with an optional lying length field. */
function raw(header: unknown, data: Uint8Array = new Uint8Array(0), length?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(length ?? BigInt(json.length));
  json.copy(out, 8);
  out.set(data, 8 + json.length);
  return out;
}

beforeAll(async () => {
  dir = tempDir('mobileutr-hostile-');
  const model = createModel('mobileutr', { size: 32 });
  await saveWeights(model, p('good.safetensors'));
  await saveWeights(model, p('meta-size.safetensors'), { size: '100' });
  put(p('model.onnx'), model.toOnnx());
  put(p('random.safetensors'), randomBytes(64 * 1024));
  put(p('pickle.pt'), Buffer.from([0x80, 0x02, 0x63, 0x63, 0x6f, 0x6c, 0x6c, 0x65, 0x63, 0x74]));
  put(p('good.png'), await diskPng(40, 30));
  await goodDataset(p('ds'), ['a', 'b']);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('safetensors headers that lie', () => {
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['a length field of 2^64 - 1', () => raw({}, new Uint8Array(8), 2n ** 64n - 1n), /not a safetensors file \(header length 18446744073709551615 exceeds the 16777216-byte \(16 MiB\) limit\)/],
    ['a 90 MiB header in a 100-byte file', () => raw('{}'.padEnd(92, ' '), new Uint8Array(0), 90n * 2n ** 20n), /header length 94371840 exceeds the 16777216-byte/],
    ['a header longer than the file', () => raw('{}', new Uint8Array(0), 1000n), /header length 1000 exceeds the 2 bytes after the length field \(file truncated\?\)/],
    ['offsets past the end of the data', () => raw({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4_000_000_000] } }, new Uint8Array(4)), /tensor "w" has data_offsets \[0, 4000000000\] but the data buffer is only 4 bytes/],
    ['offsets that do not match the shape', () => raw({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 4] } }, new Uint8Array(4)), /dtype F32 and shape \[2,3\] need 24 bytes/],
    ['a shape of 10^30 elements', () => raw({ w: { dtype: 'F32', shape: [1e15, 1e15], data_offsets: [0, 4] } }, new Uint8Array(4)), /shape .* not an array of non-negative integers|need \d+ bytes/],
    ['overlapping tensors', () => raw({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /overlap/],
    ['negative and fractional offsets', () => raw({ w: { dtype: 'F32', shape: [1], data_offsets: [-4, 0.5] } }, new Uint8Array(4)), /not two non-negative integers/],
    ['an unknown dtype', () => raw({ w: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, new Uint8Array(16)), /unknown dtype "F128"/],
    ['a header that is not JSON', () => raw('{"w": {"dtype": "F32", '), /not a safetensors file \(header is not valid JSON/],
    ['a header nested a million deep', () => raw('['.repeat(1_000_000)), /header is not valid JSON/],
    ['a header that is not UTF-8', () => raw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('latin1')), /not valid UTF-8|not valid JSON/],
    ['metadata that is not strings', () => raw({ __metadata__: { size: 32 } }), /__metadata__ value for "size" is not a string/],
  ];

  it.each(cases)('%s: refused, fast, small memory', async (_name, make, pattern) => {
    const path = p(`case-${Math.random().toString(36).slice(2)}.safetensors`);
    writeFileSync(path, make());
    const rss = process.memoryUsage.rss();
    const t = performance.now();
    const err = await readSafetensorsFile(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message.startsWith(`${path}: `)).toBe(true);
    expect((err as Error).message).toMatch(pattern);
    expect(performance.now() - t).toBeLessThan(2000);
    expect(process.memoryUsage.rss() - rss).toBeLessThan(64 * 2 ** 20);
  });

  it('a giant header (20 MiB of real JSON) is refused from its length field, before it is read', async () => {
    const big = Buffer.alloc(8 + 20 * 2 ** 20, 0x20);
    big.writeBigUInt64LE(BigInt(20 * 2 ** 20));
    big.write('{}', 8);
    writeFileSync(p('giant.safetensors'), big);
    const rss = process.memoryUsage.rss();
    await expect(readSafetensorsFile(p('giant.safetensors'))).rejects.toThrow(/header length 20971520 exceeds the 16777216-byte \(16 MiB\) limit/);
    expect(process.memoryUsage.rss() - rss).toBeLessThan(16 * 2 ** 20);
    expect(MAX_FILE_HEADER_BYTES).toBe(16 * 2 ** 20);
  });

  it('a weights file cut short names the first tensor it lacks; the data is read only after the header checks out', async () => {
    const bytes = encodeSafetensors(stateDictTensors(createModel('mobileutr', { size: 32 })));
    writeFileSync(p('cut.safetensors'), bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    await expect(readSafetensorsFile(p('cut.safetensors'))).rejects.toThrow(/cut\.safetensors: tensor ".*" has data_offsets \[\d+, \d+\] but the data buffer is only \d+ bytes/);
  });

  it('files that are something else are named for what they are', async () => {
    await expect(readSafetensorsFile(p('model.onnx'))).rejects.toThrow(/model\.onnx: not a safetensors file: it is an ONNX model, not a weights file/);
    await expect(readSafetensorsFile(p('pickle.pt'))).rejects.toThrow(/pickle\.pt: not a safetensors file: it is a Python pickle/);
    put(p('zip.pth'), Buffer.concat([Buffer.from('PK\x03\x04'), randomBytes(200)]));
    await expect(readSafetensorsFile(p('zip.pth'))).rejects.toThrow(/zip\.pth: not a safetensors file: it is a zip archive/);
    await expect(readSafetensorsFile(dir)).rejects.toThrow(/is a directory/);
    await expect(readSafetensorsFile('/dev/zero')).rejects.toThrow('/dev/zero: not a regular file');
    await expect(loadWeights(createModel('unet', { size: 32 }), p('good.safetensors'))).rejects.toThrow(/good\.safetensors: unknown tensor "patch_embeddings\..*" .*for model unet/);
  });
});

describe('every command that loads weights refuses them with one line', () => {
  it('predict, eval, serve and export', async () => {
    const M = ['--size', '32'];
    const cases: [string[], RegExp, string][] = [
      [['predict', ...M, '--weights', p('model.onnx'), '-i', p('good.png'), '-o', p('o')], /not a safetensors file: it is an ONNX model/, p('model.onnx')],
      [['eval', ...M, '--weights', p('model.onnx'), '-d', p('ds'), '-o', p('e')], /not a safetensors file: it is an ONNX model/, p('model.onnx')],
      [['serve', ...M, '--weights', p('model.onnx'), '--port', '0'], /not a safetensors file: it is an ONNX model/, p('model.onnx')],
      [['predict', ...M, '--weights', p('random.safetensors'), '-i', p('good.png'), '-o', p('o')], /not a safetensors file \(header length \d+ exceeds/, p('random.safetensors')],
      [['serve', ...M, '--weights', p('random.safetensors'), '--port', '0'], /not a safetensors file/, p('random.safetensors')],
      [['export', '--weights', p('pickle.pt'), '-o', p('x.onnx')], /it is a Python pickle \(torch\.save\?\)/, p('pickle.pt')],
      [['info', '--weights', p('meta-size.safetensors')], /metadata size="100" is not usable \(size must be a multiple of 16/, p('meta-size.safetensors')],
    ];
    const results = await cliAll(cases.map(([args]) => args));
    results.forEach((r, i) => expectCleanFailure(r, cases[i]![1], cases[i]![2]));
  });
});
