// The bundled BUSI weights: found by name everywhere a weights file is accepted, metadata that says what they are,
// the .onnx beside them giving the same logits, the recorded validation IoU reproduced by `eval` on BUSI's official
// split 1, and `train --init busi` starting from them.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensorsFile } from '../../src/io/safetensors.ts';
import { loadModel } from '../../src/models/load.ts';
import { PRETRAINED_DIR, weightsPath } from '../../src/models/pretrained.ts';
import { NodeSession } from '../../src/runtime/session.ts';
import { Rng } from '../../src/util/rng.ts';
import { datasetPath, describeWithDataset } from '../support/datasets.ts';
import { BIN } from '../support/bin.ts';

const SAMPLE = new URL('../../samples/busi-mini', import.meta.url).pathname;
const SAFETENSORS = join(PRETRAINED_DIR, 'mobileutr-busi.safetensors');

const temporary: string[] = [];
const tempDir = (prefix: string) => {
  temporary.push(mkdtempSync(join(tmpdir(), prefix)));
  return temporary[temporary.length - 1]!;
};
afterAll(() => temporary.forEach((d) => rmSync(d, { recursive: true, force: true })));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bundled weights: busi', () => {
  it('are found by name, say what they are, and carry the options to rebuild the network', async () => {
    expect(weightsPath('busi')).toBe(SAFETENSORS);
    expect(weightsPath('runs/x/best.safetensors')).toBe('runs/x/best.safetensors');
    const meta = (await readSafetensorsFile(SAFETENSORS)).metadata;
    expect(meta).toMatchObject({ pretrained: 'busi', model: 'mobileutr', size: '128', in_channels: '3', classes: '1' });
    expect(meta.citation).toMatch(/Al-Dhabyani.*Data in Brief 28 \(2020\) 104863/);
    expect(meta.licence).toMatch(/no licence.*research use/);
    expect(meta.schedule).toMatch(/^20 epochs at 128x128, batch 8, sgd lr 0.01 poly/);
    expect(meta.val_split).toBe('<datasets>/busi/splits/official_val1.txt');
    expect(Number(meta.val_iou)).toBeGreaterThan(0.6);
    const model = await loadModel({ weights: 'busi' });
    expect([model.name, model.options.size, model.parameterCount]).toEqual(['mobileutr', 128, 1_390_305]);
  });

  it('the .onnx beside them gives the logits of the safetensors within 1e-5, with the same metadata', async () => {
    const model = await loadModel({ weights: 'busi' });
    const rng = new Rng(5);
    const input = { data: Float32Array.from({ length: 2 * 3 * 128 * 128 }, () => rng.normal()), dims: [2, 3, 128, 128] };
    const fromWeights = await NodeSession.create(model.toOnnx());
    const fromFile = await NodeSession.create(new Uint8Array(readFileSync(join(PRETRAINED_DIR, 'mobileutr-busi.onnx'))));
    const [a, b] = [(await fromWeights.run({ input })).logits!.data, (await fromFile.run({ input })).logits!.data];
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    expect(worst).toBeLessThan(1e-5);
    const session = await ort.InferenceSession.create(join(PRETRAINED_DIR, 'mobileutr-busi.onnx'));
    expect(session.inputNames).toEqual(['input']);
    await Promise.all([fromWeights.release(), fromFile.release(), session.release()]);
    const onnxText = readFileSync(join(PRETRAINED_DIR, 'mobileutr-busi.onnx')).toString('latin1');
    for (const key of ['pretrained', 'citation', 'val_iou']) expect(onnxText).toContain(key);
  });

  it('work as --weights busi in info and predict, and as train --init busi (a wrong architecture is one line)', () => {
    const info = cli('info', '--weights', 'busi', '--json');
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ model: 'mobileutr', size: 128 });
    const out = tempDir('mobileutr-busi-');
    const predict = cli('predict', '--weights', 'busi', '--input', join(SAMPLE, 'images', 'benign_001.png'), '--out', join(out, 'masks'));
    expect(predict.code, predict.stderr).toBe(0);
    expect(existsSync(join(out, 'masks', 'benign_001.png'))).toBe(true);

    // a learning rate of ~0: after an epoch the convolution weights are still the bundled ones
    const run = join(out, 'run');
    const train = cli('train', '--init', 'busi', '--data', SAMPLE, '--epochs', '1', '--size', '32', '--batch', '8', '--lr', '1e-12', '--weight-decay', '0', '--threads', '1', '--out', run);
    expect(train.code, train.stderr).toBe(0);
    expect(train.stderr).toContain('starting from the weights busi');
    expect(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).init).toBe('busi');
    return Promise.all([readSafetensorsFile(join(run, 'last.safetensors')), readSafetensorsFile(SAFETENSORS)]).then(([tuned, bundled]) => {
      expect(tuned.metadata.init).toBe('busi');
      const floats = (t: { bytes: Uint8Array }) => new Float32Array(Uint8Array.from(t.bytes).buffer);
      const a = floats(tuned.tensors.get('head.weight')!);
      const b = floats(bundled.tensors.get('head.weight')!);
      expect(a.length).toBe(16);
      expect(Array.from(a).every((v, i) => Math.abs(v - b[i]!) < 1e-6)).toBe(true);
      const wrong = cli('train', '--init', 'busi', '--model', 'unet', '--data', SAMPLE, '--epochs', '1', '--out', join(out, 'wrong'));
      expect(wrong.code).toBe(1);
      expect(wrong.stderr.trim()).toBe('mobileutr: error: --init busi: holds mobileutr weights, not unet: pass --model mobileutr');
    });
  }, 300_000);
});

describeWithDataset('busi', 'bundled weights: busi, on BUSI', () => {
  it("reproduce their recorded validation IoU on BUSI's official split-1 validation images", async () => {
    const meta = (await readSafetensorsFile(SAFETENSORS)).metadata;
    const out = tempDir('mobileutr-busi-eval-');
    const r = cli('eval', '--weights', 'busi', '--data', datasetPath('busi'), '--split', join(datasetPath('busi'), 'splits', 'official_val1.txt'), '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { images: number; class0: { iou: { mean: number } } };
    expect(summary.images).toBe(195);
    expect(summary.class0.iou.mean).toBeCloseTo(Number(meta.val_iou), 4);
  }, 300_000);
});
