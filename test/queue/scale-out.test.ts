// Three worker processes over 100 images on a real redis-server; one is killed with SIGKILL while it holds jobs.
// Its jobs come back once their locks expire and another worker does them: every input ends with exactly one
// output, byte-identical to a single-process `mobileutr predict`, and no temporary file is left.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cli,
  differing,
  filesOf,
  killWorker,
  openQueue,
  queueCli,
  sampleImages,
  sleep,
  smallWeights,
  startRedis,
  startWorker,
  tempDir,
  waitFor,
  type RedisServer,
  type WorkerProcess,
} from './support.ts';

describe('queue: three workers, one killed with SIGKILL halfway', () => {
  let redis: RedisServer;
  let dir: string;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    dir = tempDir('mobileutr-queue-');
  });

  afterAll(async () => {
    await Promise.all(workers.map(killWorker));
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('every input gets exactly one output, identical to predict, none lost to the killed worker', async () => {
    const input = join(dir, 'in');
    const out = join(dir, 'out');
    const ref = join(dir, 'ref');
    const names = await sampleImages(input, 100);
    const weights = await smallWeights(join(dir, 'w.safetensors'));

    // the reference: one `predict` process over the same images
    const predicted = await cli(['predict', '--input', input, '--out', ref, '--weights', weights, '--threads', '1']);
    expect(predicted.code, predicted.stderr).toBe(0);
    const expected = names; // a mask <name>.png per <name>.png
    expect(filesOf(ref)).toEqual(expected);

    // short locks, so that the killed worker's jobs come back in ~2 s rather than 30 s; the victim takes two jobs at a time
    const lock = ['--lock-duration', '2000', '--report-every', '2'];
    workers.push(startWorker(redis.url, lock), startWorker(redis.url, lock), startWorker(redis.url, [...lock, '--concurrency', '2']));
    await Promise.all(workers.map((w) => w.ready()));
    const victim = workers[2]!;

    const submitted = await queueCli(redis.url, 'submit', ['--input', input, '--out', out, '--weights', weights, '--json']);
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(JSON.parse(submitted.stdout)).toEqual({ queue: 'mobileutr', added: 100, existing: 0 });

    const { queue, close } = openQueue(redis.url);
    try {
      // halfway, at a moment the victim holds a job: SIGKILL (no clean-up of any kind can run). The jobs it holds
      // are read before the kill: once it is dead, the stalled-job check (2 s locks) may put them back at any moment.
      // It is stopped (SIGSTOP) while they are read, so that it cannot finish them meanwhile; if it held none then
      // after all, it goes on and the wait starts again.
      const held = async () => (await queue.getActive()).filter((j) => j.processedBy === victim.name).map((j) => j.id!);
      let orphans: string[] = [];
      while (orphans.length === 0) {
        await waitFor('the victim holding a job after 40 completions', async () => (await queue.getCompletedCount()) >= 40 && (await held()).length > 0, 60_000, 2);
        victim.child.kill('SIGSTOP');
        await sleep(100); // (what it sent before it stopped reaches Redis first)
        orphans = await held();
        if (orphans.length === 0) victim.child.kill('SIGCONT');
      }
      victim.child.kill('SIGKILL');
      expect((await victim.exited).signal).toBe('SIGKILL');
      // (a job whose completion the victim had sent just before it stopped is done, by the victim: not an orphan)
      const finishedByVictim = new Set<string>();
      for (const id of orphans) if ((await queue.getJob(id))?.returnvalue?.worker === victim.name) finishedByVictim.add(id);
      orphans = orphans.filter((id) => !finishedByVictim.has(id));
      expect(orphans.length, 'jobs the killed worker held').toBeGreaterThan(0);
      const doneAtKill = await queue.getCompletedCount();
      expect(doneAtKill).toBeLessThan(100);

      await waitFor('all 100 jobs completed', async () => (await queue.getCompletedCount()) === 100, 90_000, 100);
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
      expect(counts).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 0, completed: 100 });

      // the orphans were finished by a surviving worker, after the stalled-job check put them back
      for (const id of orphans) {
        const job = (await queue.getJob(id))!;
        expect(await job.getState()).toBe('completed');
        expect(job.processedBy).not.toBe(victim.name);
        expect(job.returnvalue.worker).not.toBe(victim.name);
        expect(job.stalledCounter, `job ${id} came back from the dead worker`).toBeGreaterThanOrEqual(1);
      }
      // each job reports the one file it wrote: its own input's mask
      const jobs = await queue.getCompleted(0, 199);
      expect(jobs).toHaveLength(100);
      const reported = jobs.flatMap((j) => j.returnvalue.outputs).sort();
      expect(reported).toEqual(expected.map((n) => join(out, n)));
      // all three workers took part
      const byWorker = new Set(jobs.map((j) => j.returnvalue.worker));
      expect(byWorker.size).toBe(3);
    } finally {
      await close();
    }

    // exactly one output per input, nothing else (no .partial- temporary files), byte-identical to predict
    expect(filesOf(out)).toEqual(expected);
    expect(differing(ref, out, expected)).toEqual([]);

    // the survivors stop cleanly on SIGTERM
    for (const w of workers.slice(0, 2)) {
      w.child.kill('SIGTERM');
      expect(await w.exited, w.output()).toEqual({ code: 0, signal: null });
      expect(w.output()).not.toMatch(/\n\s+at |internal error/);
    }
  });
});
