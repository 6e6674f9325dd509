// Volumes through the queue on a real redis-server: one job per volume case (NIfTI files),
// label maps byte-identical to a single-process `mobileutr predict` of the same cases, no temporary files left, and
// a 2-D model refused at submit time for a volume folder.
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CT_META, volumeModel, writeAwkwardCt } from '../pipeline/volume-synthetic.ts';
import {
  cli,
  differing,
  expectCleanFailure,
  killWorker,
  openQueue,
  queueCli,
  smallWeights,
  startRedis,
  startWorker,
  tempDir,
  waitFor,
  type RedisServer,
  type WorkerProcess,
} from './support.ts';

let redis: RedisServer;
let dir: string;
const workers: WorkerProcess[] = [];
const p = (...parts: string[]) => join(dir, ...parts);

beforeAll(async () => {
  redis = await startRedis();
  dir = tempDir('mobileutr-queue-volumes-');
  mkdirSync(p('cases'));
  writeAwkwardCt(p('cases', 'case-a.nii.gz'));
  writeAwkwardCt(p('cases', 'case-b.nii.gz'), [17, 21, 5]);
  await volumeModel(CT_META, 32, 7, p('vol.safetensors'));
  await smallWeights(p('2d.safetensors'));
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map(killWorker));
});

afterAll(async () => {
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('queue: volumes', () => {
  it('one job per case; two workers write label maps byte-identical to predict; no temporary files', async () => {
    const sub = await queueCli(redis.url, 'submit', ['--queue', 'vol', '--input', p('cases'), '--out', p('out'), '--weights', p('vol.safetensors'), '--batch', '2', '--json']);
    expect(sub.code, sub.stderr).toBe(0);
    expect(JSON.parse(sub.stdout)).toEqual({ queue: 'vol', added: 2, existing: 0 });

    workers.push(startWorker(redis.url, ['--queue', 'vol']), startWorker(redis.url, ['--queue', 'vol']));
    const { queue, close } = openQueue(redis.url, 'vol');
    try {
      await waitFor('2 volume jobs completed', async () => (await queue.getCompletedCount()) === 2, 120_000);
      expect(await queue.getFailedCount()).toBe(0);
      const done = await queue.getCompleted();
      expect(done.map((j) => j.data.kind)).toEqual(['volume', 'volume']);
    } finally {
      await close();
    }

    const predicted = await cli(['predict', '--weights', p('vol.safetensors'), '--input', p('cases'), '--out', p('ref'), '--batch', '2', '--threads', '1']);
    expect(predicted.code, predicted.stderr).toBe(0);
    const names = ['case-a.nii.gz', 'case-b.nii.gz'];
    expect(readdirSync(p('ref')).sort()).toEqual(names);
    expect(readdirSync(p('out')).sort()).toEqual(names); // nothing else: no temporary files
    expect(differing(p('ref'), p('out'), names)).toEqual([]);
  });

  it('a 2-D model for a folder of volumes: refused at submit, one line, nothing enqueued', async () => {
    cpSync(p('cases'), p('cases-2d'), { recursive: true });
    const r = await queueCli(redis.url, 'submit', ['--queue', 'vol2d', '--input', p('cases-2d'), '--out', p('out-2d'), '--weights', p('2d.safetensors')]);
    expectCleanFailure(r, /volume/i);
    const { queue, close } = openQueue(redis.url, 'vol2d');
    try {
      expect(await queue.count()).toBe(0);
    } finally {
      await close();
    }
  });
});
