// MobileUtr's LGL kernel as a model option: the default is the official network, other kernels only change the
// LocalAgg kernels' shapes, and the kernel travels in the weights (metadata, else the tensor shapes). `auto`'s
// measurement on a synthetic mask set with known object diameters.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { scanDataset } from '../../src/data/dataset.ts';
import { UserError } from '../../src/errors.ts';
import { encodeSafetensors, readSafetensorsFile } from '../../src/io/safetensors.ts';
import { loadModel } from '../../src/models/load.ts';
import { createModel } from '../../src/models/model.ts';
import { kernelFromDiameter, objectDiameters } from '../../src/models/mobileutr/lgl-kernel.ts';
import { saveWeights, stateDictTensors } from '../../src/models/weights.ts';
import { readOnnxSummary } from '../../src/web/onnx-info.ts';
import { PAPER_DEFAULTS, type TrainConfig } from '../../src/train/config.ts';
import { autoLglKernel, measureTargetDiameter } from '../../src/train/lgl-auto.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'mobileutr-lgl-'));
const LOCAL_AGG = /LocalAgg\.(pos_embed|attn)\.weight$/;
/** Equivalent-circle diameter of a square of side s. */
const squareDiameter = (s: number) => 2 * Math.sqrt((s * s) / Math.PI);
/** Bit equality of two weight arrays (vitest's element-wise toEqual takes minutes on millions of floats). */
const sameBits = (a: Float32Array | undefined, b: Float32Array) => a !== undefined && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('LGL kernel: the model option', () => {
  it('default 9 is the official network: the same graph, initial weights and shapes as an explicit 9', () => {
    for (const name of ['mobileutr', 'mobileutr-l']) {
      const a = createModel(name, { size: 32 });
      const b = createModel(name, { size: 32, lglKernel: 9 });
      expect(a.options.lglKernel).toBe(9);
      expect(JSON.stringify(b.graph.builder.nodes)).toBe(JSON.stringify(a.graph.builder.nodes));
      expect(JSON.stringify(b.buildGraph({ training: true, batch: 2 }).builder.nodes)).toBe(JSON.stringify(a.buildGraph({ training: true, batch: 2 }).builder.nodes));
      for (const [k, w] of a.weights) expect(sameBits(b.weights.get(k), w), k).toBe(true);
    }
    const m = createModel('mobileutr', { size: 32 });
    expect(m.parameterCount).toBe(1_390_305);
    const local = m.entries.filter((p) => LOCAL_AGG.test(p.value.name));
    expect(local.map((p) => p.value.shape)).toEqual(Array(6).fill([64, 1, 9, 9]));
  });

  it('another kernel changes only the LocalAgg kernels: same state_dict names, shapes k×k, parameters accordingly', () => {
    const base = createModel('mobileutr', { size: 32 });
    const k5 = createModel('mobileutr', { size: 32, lglKernel: 5 });
    expect(k5.entries.map((p) => p.value.name)).toEqual(base.entries.map((p) => p.value.name));
    for (const p of k5.entries) {
      const want = LOCAL_AGG.test(p.value.name) ? [64, 1, 5, 5] : base.graph.builder.params.get(p.value.name)!.value.shape;
      expect(p.value.shape, p.value.name).toEqual(want);
    }
    // 3 blocks x (pos_embed + attn) x 64 channels x (81 - 25)
    expect(base.parameterCount - k5.parameterCount).toBe(6 * 64 * (81 - 25));
    const l = createModel('mobileutr-l', { size: 32, lglKernel: 13 });
    expect(l.graph.builder.params.get('lklgl_bottleneck.2.LocalAgg.attn.weight')!.value.shape).toEqual([128, 1, 13, 13]);
  });

  it('rejects even, out-of-range and non-integer kernels, and kernels on models without LGL blocks', () => {
    for (const k of [4, 1, 33, 7.5, Number.NaN]) expect(() => createModel('mobileutr', { size: 32, lglKernel: k })).toThrow(/lgl-kernel must be an odd integer from 3 to 31/);
    expect(() => createModel('unet', { size: 32, lglKernel: 5 })).toThrow(UserError);
    expect(() => createModel('cmunext', { size: 32, lglKernel: 5 })).toThrow(/applies to MobileUtr \(mobileutr, mobileutr-l\) only; cmunext has no LGL blocks/);
    expect(createModel('unet', { size: 32 }).options.lglKernel).toBe(9);
  });

  it('round-trips through the weights: metadata lgl_kernel, else the LocalAgg tensor shape (files of the official code)', async () => {
    const dir = tmp();
    const model = createModel('mobileutr', { size: 32, lglKernel: 7, seed: 3 });
    const path = join(dir, 'k7.safetensors');
    await saveWeights(model, path);
    expect((await readSafetensorsFile(path)).metadata).toMatchObject({ model: 'mobileutr', size: '32', lgl_kernel: '7' });
    const back = await loadModel({ weights: path });
    expect(back.options.lglKernel).toBe(7);
    for (const [k, w] of model.weights) expect(sameBits(back.weights.get(k), w), k).toBe(true);
    // no metadata at all, as safetensors.torch.save_file(model.state_dict()) writes
    const bare = join(dir, 'bare.safetensors');
    writeFileSync(bare, encodeSafetensors(stateDictTensors(model)));
    expect((await loadModel({ weights: bare, size: 32 })).options.lglKernel).toBe(7);
    // a contradicting --lgl-kernel is one clear line, not a tensor shape mismatch
    await expect(loadModel({ weights: path, lglKernel: 9 })).rejects.toThrow(`${path}: the weights have LGL kernel 7, not 9; leave --lgl-kernel out to use theirs`);
    // default 9 is written too, and other models carry no lgl_kernel
    const p9 = join(dir, 'k9.safetensors');
    await saveWeights(createModel('mobileutr', { size: 32 }), p9);
    expect((await readSafetensorsFile(p9)).metadata.lgl_kernel).toBe('9');
    const pu = join(dir, 'unext.safetensors');
    await saveWeights(createModel('unext', { size: 32 }), pu);
    expect((await readSafetensorsFile(pu)).metadata.lgl_kernel).toBeUndefined();
    // a metadata value that cannot be a kernel names the file and the key
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, encodeSafetensors(stateDictTensors(model), { format: 'pt', model: 'mobileutr', size: '32', lgl_kernel: '8' }));
    await expect(loadModel({ weights: bad })).rejects.toThrow(/bad\.safetensors: metadata lgl_kernel="8" is not usable \(lgl-kernel must be an odd integer/);
  });

  it('the exported ONNX names its kernel in metadata_props', () => {
    expect(readOnnxSummary(createModel('mobileutr', { size: 32, lglKernel: 11 }).toOnnx()).metadata).toMatchObject({ model: 'mobileutr', lgl_kernel: '11' });
  });
});

describe('LGL kernel: auto from the mean target diameter', () => {
  it('K = D/16 rounded to the nearest odd integer, clamped to [3, 15]', () => {
    const cases: [number, number][] = [[0, 3], [16, 3], [63.9, 3], [64, 5], [95.9, 5], [96, 7], [143.9, 9], [144, 9], [160, 11], [230, 15], [1000, 15]];
    for (const [d, k] of cases) expect(kernelFromDiameter(d), `D=${d}`).toBe(k);
  });

  it('objects are 8-connected components; each counts with 2·sqrt(area/π)', () => {
    const w = 8;
    const mask = new Uint8Array(w * 6);
    const set = (x: number, y: number) => (mask[y * w + x] = 1);
    // a 2x2 square, a pixel touching it diagonally (the same object), and a separate 3x1 bar
    set(0, 0), set(1, 0), set(0, 1), set(1, 1), set(2, 2);
    set(5, 4), set(6, 4), set(7, 4);
    expect(objectDiameters(mask, w, 6)).toEqual([2 * Math.sqrt(5 / Math.PI), 2 * Math.sqrt(3 / Math.PI)]);
    expect(objectDiameters(new Uint8Array(16), 4, 4)).toEqual([]);
  });

  it('measures the TRAINING masks at the input size: known squares give the expected D and K', async () => {
    const root = tmp();
    mkdirSync(join(root, 'images'));
    mkdirSync(join(root, 'masks', '0'), { recursive: true });
    // 512x512 masks; squares at even offsets with even sides halve exactly at 256 (cv2 nearest)
    const squares: Record<string, [number, number, number][]> = {
      a: [[100, 100, 200]],
      b: [[0, 0, 100], [300, 300, 60]],
      c: [],
      huge: [[6, 6, 500]], // validation only: must not count
    };
    for (const [id, list] of Object.entries(squares)) {
      const px = new Uint8Array(512 * 512);
      for (const [x0, y0, s] of list) for (let y = y0; y < y0 + s; y++) px.fill(255, y * 512 + x0, y * 512 + x0 + s);
      await sharp(px, { raw: { width: 512, height: 512, channels: 1 } }).png().toFile(join(root, 'masks', '0', `${id}.png`));
      await sharp(px, { raw: { width: 512, height: 512, channels: 1 } }).png().toFile(join(root, 'images', `${id}.png`));
    }
    writeFileSync(join(root, 'train.txt'), 'a\nb\nc\n');
    writeFileSync(join(root, 'val.txt'), 'huge\n');
    const ds = await scanDataset(root);
    const config: TrainConfig = { ...PAPER_DEFAULTS, data: root, classes: 1, size: 256, trainSplit: join(root, 'train.txt'), valSplit: join(root, 'val.txt') };

    const m = await autoLglKernel(config, ds);
    const mean = (squareDiameter(100) + squareDiameter(50) + squareDiameter(30)) / 3; // 67.70 px at 256
    expect(m).toMatchObject({ objects: 3, masks: 3, emptyMasks: 1, size: 256, kernel: 5 });
    expect(m.meanDiameter).toBeCloseTo(mean, 10);
    // with the validation mask it would be 7: only training masks count
    expect((await measureTargetDiameter(ds, ['a', 'b', 'c', 'huge'], 256)).kernel).toBe(7);
    // at 128 the same lesions are half as wide: D 33.85 -> 3
    const half = await autoLglKernel({ ...config, size: 128 }, ds);
    expect(half.meanDiameter).toBeCloseTo(mean / 2, 10);
    expect(half.kernel).toBe(3);
    // without split files, the seeded random split's training part (the same rule the run uses)
    const random = await autoLglKernel({ ...config, trainSplit: null, valSplit: null, val: 0.25 }, ds);
    expect(random.masks).toBe(3);
    // nothing to measure is an error, not a silent 3
    await expect(autoLglKernel({ ...config, trainSplit: join(root, 'empty.txt') }, ds)).rejects.toThrow(UserError);
    writeFileSync(join(root, 'empty.txt'), 'c\n');
    await expect(autoLglKernel({ ...config, trainSplit: join(root, 'empty.txt') }, ds)).rejects.toThrow(/hold no foreground at 256x256; give --lgl-kernel N/);
  });
});
