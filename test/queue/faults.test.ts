// The queue's faults and commands on a real redis-server with real worker processes: a poison input, a Redis
// restart with jobs in flight, SIGTERM during a job, deterministic job ids, `queue status --json`, retry-failed,
// drain, and the one-line errors of the commands.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/redis-server.ts';
import { createModel } from '../../src/models/model.ts';
import { saveWeights } from '../../src/models/weights.ts';
import { cliAll } from '../reliability/support.ts';
import {
  cli,
  differing,
  expectCleanFailure,
  filesOf,
  killWorker,
  openQueue,
  queueCli,
  sampleImages,
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
let weights: string;
const workers: WorkerProcess[] = [];
let n = 0;

beforeAll(async () => {
  redis = await startRedis();
  dir = tempDir('mobileutr-queue-faults-');
  weights = await smallWeights(join(dir, 'w32.safetensors'));
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map(killWorker));
});

afterAll(async () => {
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A fresh queue name, input folder and output folder for one test. */
function fresh(): { queue: string; input: string; out: string; ref: string } {
  n++;
  return { queue: `q${n}`, input: join(dir, `in${n}`), out: join(dir, `out${n}`), ref: join(dir, `ref${n}`) };
}

async function status(queue: string): Promise<{ waiting: number; active: number; completed: number; failed: number; delayed: number; failures: { input: string; error: string; attempts: number }[] }> {
  const r = await queueCli(redis.url, 'status', ['--queue', queue, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('queue faults', () => {
  it('a poison input fails after its attempts with its error recorded, and does not block the others; retry-failed runs it again', async () => {
    const t = fresh();
    const names = await sampleImages(t.input, 6);
    // sorted first: it is the first job of the queue
    writeFileSync(join(t.input, '000-corrupt.png'), Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.from('this is not a PNG')]));
    const sub = await queueCli(redis.url, 'submit', ['--queue', t.queue, '--input', t.input, '--out', t.out, '--weights', weights, '--attempts', '3', '--backoff', '100', '--json']);
    expect(sub.code, sub.stderr).toBe(0);
    expect(JSON.parse(sub.stdout)).toMatchObject({ added: 7, existing: 0 });

    const w = startWorker(redis.url, ['--queue', t.queue]);
    workers.push(w);
    const { queue, close } = openQueue(redis.url, t.queue);
    try {
      await waitFor('6 completed and 1 failed', async () => (await queue.getCompletedCount()) === 6 && (await queue.getFailedCount()) === 1);
    } finally {
      await close();
    }
    const s = await status(t.queue);
    expect(s).toMatchObject({ waiting: 0, active: 0, delayed: 0, completed: 6, failed: 1 });
    expect(s.failures).toHaveLength(1);
    expect(s.failures[0]!.input).toBe(join(t.input, '000-corrupt.png'));
    expect(s.failures[0]!.error).toMatch(/000-corrupt\.png.*(corrupt|decode|not a|unsupported)/i);
    expect(s.failures[0]!.attempts).toBe(3);
    expect(filesOf(t.out)).toEqual(names);
    // each failed attempt is logged, the last one as failed
    expect(w.output()).toMatch(/will retry \(attempt 1 of 3\): .*000-corrupt\.png/);
    expect(w.output()).toMatch(/failed \(attempt 3 of 3\): .*000-corrupt\.png/);
    // the human-readable status names it
    const text = await queueCli(redis.url, 'status', ['--queue', t.queue]);
    expect(text.stdout).toMatch(/failed\s+1/);
    expect(text.stdout).toContain(`${join(t.input, '000-corrupt.png')}: `);

    // retry-failed: the job runs its attempts anew (and fails again: the file is still corrupt)
    const retried = await queueCli(redis.url, 'retry-failed', ['--queue', t.queue]);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toMatch(/1 failed job moved back to waiting, with all their attempts/);
    await waitFor('the retried poison job failing again', () => w.output().match(/failed \(attempt 3 of 3\)/g)?.length === 2);
    expect(w.output()).not.toMatch(/attempt 4/);
    const again = await status(t.queue);
    expect(again).toMatchObject({ waiting: 0, active: 0, delayed: 0, completed: 6, failed: 1 });
    expect(again.failures[0]!.attempts).toBe(3);
  });

  it('a Redis restart while jobs are in flight: workers reconnect and finish every job', async () => {
    const t = fresh();
    const names = await sampleImages(t.input, 40);
    // a larger model: jobs take long enough to be in flight when Redis goes down
    const big = await smallWeights(join(dir, 'w128.safetensors'), 128);
    const predicted = await cli(['predict', '--input', t.input, '--out', t.ref, '--weights', big, '--threads', '1', '--prob', '--overlay']);
    expect(predicted.code, predicted.stderr).toBe(0);

    const lock = ['--queue', t.queue, '--lock-duration', '3000'];
    workers.push(startWorker(redis.url, lock), startWorker(redis.url, lock));
    await Promise.all(workers.map((w) => w.ready()));
    const sub = await queueCli(redis.url, 'submit', ['--queue', t.queue, '--input', t.input, '--out', t.out, '--weights', big, '--prob', '--overlay']);
    expect(sub.code, sub.stderr).toBe(0);

    const { queue, close } = openQueue(redis.url, t.queue);
    try {
      await waitFor('5 jobs done and 2 in flight', async () => (await queue.getCompletedCount()) >= 5 && (await queue.getActiveCount()) === 2, 60_000, 10);
      const doneBefore = await queue.getCompletedCount();
      // SIGTERM: Redis writes its append-only file and exits; 1.5 s later it is back with the same data
      await redis.restart(1500);
      for (const w of workers) await waitFor('the worker saying it reconnected', () => /reconnected to Redis/.test(w.output()), 30_000);
      await waitFor('all 40 jobs completed', async () => (await queue.getCompletedCount()) === 40, 120_000, 200);
      expect(doneBefore).toBeLessThan(38);
    } finally {
      await close();
    }
    expect(await status(t.queue)).toMatchObject({ waiting: 0, active: 0, delayed: 0, failed: 0, completed: 40 });
    for (const w of workers) {
      expect(w.output()).toMatch(/lost the connection to Redis at redis:\/\/127\.0\.0\.1:\d+ .*; reconnecting/);
      expect(w.child.exitCode).toBeNull(); // still running
      expect(w.output()).not.toMatch(/\n\s+at |internal error/);
    }
    // every image: mask, probability map and overlay, as predict writes them, nothing else
    const expected = names.flatMap((f) => [f, f.replace('.png', '_overlay.png'), f.replace('.png', '_prob.png')]).sort();
    expect(filesOf(t.out)).toEqual(expected);
    expect(filesOf(t.ref)).toEqual(expected);
    expect(differing(t.ref, t.out, expected)).toEqual([]);
  });

  it('SIGTERM finishes the job in progress, then exits; drain removes the rest', async () => {
    const t = fresh();
    await sampleImages(t.input, 20);
    const big = join(dir, 'w128.safetensors');
    await smallWeights(big, 128);
    // a temporary file as a SIGKILLed worker would leave it: the worker that writes that output removes it
    const stale = join(t.out, '000-benign_001-v0.png.partial-4242-deadbeef');
    const sub = await queueCli(redis.url, 'submit', ['--queue', t.queue, '--input', t.input, '--out', t.out, '--weights', big]);
    expect(sub.code, sub.stderr).toBe(0);
    writeFileSync(stale, 'half a PNG');

    const w = startWorker(redis.url, ['--queue', t.queue]);
    workers.push(w);
    const { queue, close } = openQueue(redis.url, t.queue);
    try {
      const job = await waitFor('a job in progress after 2 done', async () => (await queue.getCompletedCount()) >= 2 && (await queue.getActive()).find((j) => j.processedBy === w.name), 60_000, 2);
      w.child.kill('SIGTERM');
      expect(await w.exited, w.output()).toEqual({ code: 0, signal: null });
      expect(w.output()).toMatch(/SIGTERM: finishing the job in progress, then exiting/);
      // the job it held was finished (not abandoned to the lock expiry), and it took no other
      const after = (await queue.getJob(job.id!))!;
      expect(await after.getState()).toBe('completed');
      expect(after.returnvalue.worker).toBe(w.name);
      const counts = await queue.getJobCounts('waiting', 'active', 'completed');
      expect(counts.active).toBe(0);
      expect(counts.waiting).toBeGreaterThan(0);
      expect(counts.waiting + counts.completed).toBe(20);
      const written = filesOf(t.out);
      expect(written).toHaveLength(counts.completed);
      expect(written).not.toContain('000-benign_001-v0.png.partial-4242-deadbeef');
      expect(written.every((f) => !f.includes('.partial-'))).toBe(true);

      const drained = await queueCli(redis.url, 'drain', ['--queue', t.queue]);
      expect(drained.code, drained.stderr).toBe(0);
      expect(drained.stdout).toContain(`${counts.waiting} jobs not started removed`);
      expect(await status(t.queue)).toMatchObject({ waiting: 0, active: 0, completed: counts.completed, failed: 0 });
    } finally {
      await close();
    }
  });

  it('job ids are deterministic: submitting again adds nothing, a changed file adds one job; status --json has the counts', async () => {
    const t = fresh();
    const names = await sampleImages(t.input, 5);
    const args = ['--queue', t.queue, '--input', t.input, '--out', t.out, '--weights', weights];
    const first = await queueCli(redis.url, 'submit', args);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/added 5 jobs, 0 already there/);
    const second = await queueCli(redis.url, 'submit', [...args, '--json']);
    expect(JSON.parse(second.stdout)).toEqual({ queue: t.queue, added: 0, existing: 5 });
    // new bytes under the same name: new work
    writeFileSync(join(t.input, names[0]!), readFileSync(join(t.input, names[1]!)));
    const third = await queueCli(redis.url, 'submit', [...args, '--json']);
    expect(JSON.parse(third.stdout)).toEqual({ queue: t.queue, added: 1, existing: 4 });
    // a list file naming the same images: the same ids
    writeFileSync(join(dir, `list${n}.txt`), `# two of them\n${names.slice(1, 3).map((f) => join(`in${n}`, f)).join('\n')}\n\n`);
    const listed = await queueCli(redis.url, 'submit', [...args.slice(0, 2), '--input', join(dir, `list${n}.txt`), ...args.slice(4), '--json']);
    expect(JSON.parse(listed.stdout), listed.stderr).toEqual({ queue: t.queue, added: 0, existing: 2 });

    const s = await status(t.queue);
    expect(Object.keys(s)).toEqual(expect.arrayContaining(['waiting', 'active', 'completed', 'failed']));
    for (const k of ['waiting', 'active', 'completed', 'failed', 'delayed'] as const) expect(typeof s[k]).toBe('number');
    expect(s).toMatchObject({ waiting: 6, active: 0, completed: 0, failed: 0, delayed: 0, failures: [] });

    const all = await queueCli(redis.url, 'drain', ['--queue', t.queue, '--all']);
    expect(all.stdout).toContain('6 jobs not started removed, 0 completed and 0 failed forgotten');
    const again = await queueCli(redis.url, 'submit', [...args, '--json']);
    expect(JSON.parse(again.stdout)).toEqual({ queue: t.queue, added: 5, existing: 0 });
  });

  it('weights rewritten at the same path: the next jobs run on the new weights, not on the model a worker loaded', async () => {
    const t = fresh();
    const names = await sampleImages(t.input, 1);
    const w = join(dir, `rewritten${n}.safetensors`);
    await saveWeights(createModel('mobileutr', { size: 32, seed: 3 }), w);
    const worker = startWorker(redis.url, ['--queue', t.queue]);
    workers.push(worker);
    const { queue, close } = openQueue(redis.url, t.queue);
    try {
      const submit = async (out: string) => {
        const r = await queueCli(redis.url, 'submit', ['--queue', t.queue, '--input', t.input, '--out', out, '--weights', w, '--prob']);
        expect(r.code, r.stderr).toBe(0);
      };
      await submit(join(t.out, 'old'));
      await waitFor('the first job', async () => (await queue.getCompletedCount()) === 1);
      await saveWeights(createModel('mobileutr', { size: 32, seed: 11 }), w); // retrained, same path
      await submit(join(t.out, 'new'));
      await waitFor('the second job', async () => (await queue.getCompletedCount()) === 2);
    } finally {
      await close();
    }
    const predicted = await cli(['predict', '--input', t.input, '--out', t.ref, '--weights', w, '--threads', '1', '--prob']);
    expect(predicted.code, predicted.stderr).toBe(0);
    const files = [names[0]!, names[0]!.replace('.png', '_prob.png')];
    expect(differing(t.ref, join(t.out, 'new'), files)).toEqual([]);
    expect(differing(t.ref, join(t.out, 'old'), files)).not.toEqual([]); // (the two weights do differ)
  });

  it('unreachable Redis, a bad URL, a missing input or list entry: one line, exit 1, no stack trace', async () => {
    const closed = `redis://127.0.0.1:${await freePort()}`;
    const input = join(dir, 'in-errors');
    await sampleImages(input, 1);
    const out = join(dir, 'out-errors');
    writeFileSync(join(dir, 'bad-list.txt'), 'in-errors\nmissing.png\n');
    const q = (url: string, sub: string, args: string[] = []) => ['queue', sub, '--redis', url, ...args];
    const cases: [string[], RegExp][] = [
      [q(closed, 'status'), /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: connection refused/],
      [q(closed, 'submit', ['--input', input, '--out', out]), /cannot reach Redis/],
      [['worker', '--redis', closed], /cannot reach Redis/],
      [q('http://localhost:6379', 'status'), /--redis "http:\/\/localhost:6379": the scheme must be redis:\/\/ or rediss:\/\//],
      [q('not a url', 'drain'), /--redis "not a url": not a URL/],
      // the password is never printed
      [q(`redis://user:s3cret@127.0.0.1:${new URL(closed).port}`, 'retry-failed'), /cannot reach Redis at redis:\/\/user:\*\*\*@127/],
      [q(redis.url, 'submit', ['--input', join(dir, 'nowhere'), '--out', out]), /nowhere: not found/],
      [q(redis.url, 'submit', ['--input', join(dir, 'bad-list.txt'), '--out', out]), /bad-list\.txt:2: .*missing\.png: not found/],
      [q(redis.url, 'submit', ['--input', input, '--out', out, '--weights', join(dir, 'no.safetensors')]), /no\.safetensors/],
      [q(redis.url, 'status', ['--queue', 'a:b']), /--queue "a:b"/],
    ];
    const results = await cliAll(cases.map(([args]) => args));
    for (const [i, r] of results.entries()) {
      const line = expectCleanFailure(r, cases[i]![1]);
      expect(line).not.toContain('s3cret');
    }
  });
});
