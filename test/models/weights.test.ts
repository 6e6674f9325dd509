import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { encodeSafetensors, parseSafetensors, type TensorToEncode } from '../../src/io/safetensors.ts';
import { createModel } from '../../src/models/model.ts';
import { loadStateDict, loadWeights, saveWeights, stateDictTensors } from '../../src/models/weights.ts';
import { itWithFixtures, readBundle } from '../support/fixtures.ts';
import { differingTensors } from '../support/tensors.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'mobileutr-w-'));

describe('weights as safetensors with PyTorch state_dict names', () => {
  it('round-trips every tensor bit-exactly, num_batches_tracked as int64', async () => {
    const a = createModel('mobileutr', { size: 64, seed: 1 });
    a.weights.set('patch_embeddings.stem.1.num_batches_tracked', new Float32Array([7]));
    const path = join(tmp(), 'a.safetensors');
    await saveWeights(a, path);
    const b = createModel('mobileutr', { size: 64, seed: 2 });
    expect(b.weights.get('head.weight')).not.toEqual(a.weights.get('head.weight'));
    await loadWeights(b, path);
    expect(differingTensors(b.weights, a.weights)).toEqual([]);
    const parsed = parseSafetensors(encodeSafetensors(stateDictTensors(a)));
    expect(parsed.tensors.get('patch_embeddings.stem.1.num_batches_tracked')!.dtype).toBe('I64');
    expect(parsed.tensors.get('head.weight')!.dtype).toBe('F32');
  });

  it('writes metadata that restores the model options', async () => {
    const model = createModel('mobileutr', { size: 96, classes: 2 });
    const path = join(tmp(), 'b.safetensors');
    await saveWeights(model, path);
    const { readSafetensorsFile } = await import('../../src/io/safetensors.ts');
    expect((await readSafetensorsFile(path)).metadata).toMatchObject({ model: 'mobileutr', size: '96', classes: '2', in_channels: '3' });
  });

  itWithFixtures('loads a state_dict in the official key order (from the PyTorch fixture)', () => {
    const tensors: [string, TensorToEncode][] = [...readBundle('mobileutr_seed0.weights').tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data }]);
    const model = createModel('mobileutr', { size: 64 });
    loadStateDict(model, parseSafetensors(encodeSafetensors(tensors)), 'official.safetensors');
    expect(model.weights.get('head.bias')).toEqual(tensors.find(([k]) => k === 'head.bias')![1].data);
  });

  const mutate = (edit: (t: [string, TensorToEncode][]) => [string, TensorToEncode][]) => {
    const model = createModel('mobileutr', { size: 64 });
    const bytes = encodeSafetensors(edit(stateDictTensors(model)));
    return () => loadStateDict(createModel('mobileutr', { size: 64 }), parseSafetensors(bytes, 'w.safetensors'), 'w.safetensors');
  };

  it('an unknown tensor is an error naming it', () => {
    const load = mutate((t) => [...t, ['decoder.extra.weight', { shape: [2], data: new Float32Array(2) }]]);
    expect(load).toThrow(UserError);
    expect(load).toThrow('w.safetensors: unknown tensor "decoder.extra.weight" for model mobileutr');
  });

  it('a missing tensor is an error naming it', () => {
    expect(mutate((t) => t.filter(([k]) => k !== 'head.bias'))).toThrow('w.safetensors: missing tensor "head.bias" for model mobileutr');
  });

  it('a mis-shaped tensor is an error naming it and both shapes', () => {
    const load = mutate((t) => t.map(([k, v]) => (k === 'head.weight' ? [k, { shape: [2, 16, 1, 1], data: new Float32Array(32) }] : [k, v])));
    expect(load).toThrow('w.safetensors: tensor "head.weight" has shape [2,16,1,1], model mobileutr expects [1,16,1,1]');
  });

  it('non-finite parameters are refused', () => {
    const load = mutate((t) => t.map(([k, v]) => (k === 'head.bias' ? [k, { shape: [1], data: new Float32Array([NaN]) }] : [k, v])));
    expect(load).toThrow(/head.bias" contains NaN/);
  });

  it('weights of another architecture are refused', async () => {
    const path = join(tmp(), 'l.safetensors');
    await saveWeights(createModel('mobileutr-l', { size: 64 }), path);
    await expect(loadWeights(createModel('mobileutr', { size: 64 }), path)).rejects.toThrow(/l\.safetensors: (unknown tensor|tensor .* has shape)/);
  });
});
