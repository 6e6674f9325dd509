// The compile cache (src/runtime/compile-cache.ts): a MobileUtr training step from a cached optimized graph gives
// the same bits as a session that optimized the graph itself; damaged entries, `off` and unwritable folders cost
// only time; the folder stays under its size bound.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { trainingStepFeeds } from '../../src/autodiff/step-feeds.ts';
import { buildTrainingGraph } from '../../src/autodiff/training-graph.ts';
import { createModel } from '../../src/models/model.ts';
import { sgd } from '../../src/optim/optimizers.ts';
import { compileCacheDir, prune } from '../../src/runtime/compile-cache.ts';
import { NodeSession } from '../../src/runtime/session.ts';
import type { TensorMap } from '../../src/runtime/types.ts';
import { differingTensors } from '../support/tensors.ts';

const root = mkdtempSync(join(tmpdir(), 'mobileutr-compile-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const model = createModel('mobileutr', { size: 16, seed: 3 });
const graph = buildTrainingGraph(model, { batch: 2, optimizer: sgd({ momentum: 0.9, weightDecay: 1e-4 }) });
const feeds = trainingStepFeeds(
  graph,
  model,
  { data: new Float32Array(2 * 3 * 16 * 16).map((_, i) => Math.sin(i * 0.21)), dims: [2, 3, 16, 16] },
  { data: new Float32Array(2 * 16 * 16).map((_, i) => (i % 5 < 2 ? 1 : 0)), dims: [2, 1, 16, 16] },
);
const asMap = (out: TensorMap) => new Map(Object.entries(out).map(([k, t]) => [k, t.data]));

/** One training step on a session made with MOBILEUTR_CACHE_DIR = `dir` (undefined: the cache not asked for). */
async function step(dir: string | undefined, onnx = graph.onnx, inputs = feeds): Promise<Map<string, Float32Array>> {
  const saved = process.env.MOBILEUTR_CACHE_DIR;
  if (dir !== undefined) process.env.MOBILEUTR_CACHE_DIR = dir;
  try {
    const session = await NodeSession.create(onnx, { memoryPattern: false, compileCache: dir !== undefined });
    const out = asMap(await session.run(inputs));
    await session.release();
    return out;
  } finally {
    process.env.MOBILEUTR_CACHE_DIR = saved;
  }
}
const entries = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.ort-optimized.onnx'));

describe('compile cache', () => {
  it('a miss writes one entry, a hit reads it, a damaged entry is rewritten: the same bits each time', async () => {
    const reference = await step(undefined);
    const dir = join(root, 'cache');
    const miss = await step(dir);
    expect(entries(dir)).toHaveLength(1);
    expect(readdirSync(dir)).toEqual(entries(dir)); // no temporary files left
    const entry = join(dir, entries(dir)[0]!);
    utimesSync(entry, new Date(1000), new Date(1000));
    const hit = await step(dir);
    expect(statSync(entry).mtimeMs).toBeGreaterThan(Date.now() - 60_000); // marked as used
    truncateSync(entry, 1000);
    const repaired = await step(dir);
    expect(statSync(entry).size).toBeGreaterThan(1000);
    for (const got of [miss, hit, repaired]) expect(differingTensors(got, reference)).toEqual([]);
    expect(reference.size).toBeGreaterThan(100);
  });

  it('`off` writes nothing; an unwritable folder costs nothing but the time', async () => {
    // the inference graph: quick to optimize, and the same code path
    const infer = (dir: string) => step(dir, model.toOnnx(), { input: feeds[graph.image]! });
    const before = readdirSync(root);
    await infer('off');
    expect(readdirSync(root)).toEqual(before);
    const file = join(root, 'a-file');
    writeFileSync(file, 'not a folder');
    await expect(infer(join(file, 'cache'))).resolves.toBeInstanceOf(Map);
    expect((await infer(join(root, 'writable'))).get('logits')).toHaveLength(2 * 16 * 16);
    expect(entries(join(root, 'writable'))).toHaveLength(1);
  });

  it('on only where MOBILEUTR_CACHE_DIR names a folder', () => {
    expect(compileCacheDir({ MOBILEUTR_CACHE_DIR: 'off' })).toBeUndefined();
    expect(compileCacheDir({ MOBILEUTR_CACHE_DIR: '/x/y' })).toBe('/x/y');
    // off by default (it costs peak memory, src/runtime/compile-cache.ts)
    expect(compileCacheDir({ XDG_CACHE_HOME: '/xdg' })).toBeUndefined();
    expect(compileCacheDir({ MOBILEUTR_CACHE_DIR: ' ' })).toBeUndefined();
  });

  it('prune keeps the most recently used entries under the bound', () => {
    const dir = join(root, 'prune');
    mkdirSync(dir);
    for (const [i, name] of ['old', 'mid', 'new'].entries()) {
      const path = join(dir, `${name}.ort-optimized.onnx`);
      writeFileSync(path, new Uint8Array(400));
      utimesSync(path, new Date(1e6 * (i + 1)), new Date(1e6 * (i + 1)));
    }
    writeFileSync(join(dir, 'other.txt'), new Uint8Array(4000));
    prune(dir, 1000);
    expect(readdirSync(dir).sort()).toEqual(['mid.ort-optimized.onnx', 'new.ort-optimized.onnx', 'other.txt']);
  });
});
