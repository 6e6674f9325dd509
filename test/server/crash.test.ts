// Crash isolation (issue 14, part 3): inference runs in child processes, so a native crash (SIGSEGV) or a kill
// costs only the batch in flight (503 + Retry-After); the requests queued behind it run on the replacement, the
// server keeps answering, /metrics counts the restart, and a worker that crashes at every start is restarted with
// an exponential, capped backoff while /healthz says 503.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SegmentationModel } from '../../src/models/model.ts';
import { saveWeights } from '../../src/models/weights.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';
import { buildServer } from '../../src/server/app.ts';
import { WorkerPool } from '../../src/server/worker-pool.ts';
import { parsePrometheusText, valueOf } from './prometheus.ts';
import { diskPng, maskPixels, postImage, serveCli, start, stopCli, testModel, waitForHealth, waitForLog, waitUntil } from './support.ts';

let model: SegmentationModel;
let reference: Segmenter;
let dir: string;

beforeAll(async () => {
  model = await testModel(32);
  reference = await Segmenter.create(model);
  dir = mkdtempSync(join(tmpdir(), 'mobileutr-crash-'));
});

afterAll(async () => {
  await reference.release();
  rmSync(dir, { recursive: true, force: true });
});

async function metrics(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/metrics`, { headers });
  expect(res.status).toBe(200);
  return parsePrometheusText(await res.text());
}

const health = async (url: string) => {
  const res = await fetch(`${url}/healthz`);
  return { code: res.status, body: await res.json() };
};

describe('a worker process killed while its batch runs', () => {
  it.each(['SIGSEGV', 'SIGKILL'] as const)('%s: only the batch in flight fails (503 + Retry-After); the queued requests run on the replacement', async (signal) => {
    // each run waits in the worker while `hold` exists: the first batch stays in flight (and the five stay queued
    // behind it) until the kill, however slow the machine; the file goes right after the kill, so the replacement
    // runs the five
    const hold = join(dir, `hold-runs-${signal}`);
    writeFileSync(hold, '');
    const pool = await WorkerPool.create(model, { workers: 1, testHooks: { holdRunWhile: hold } });
    const srv = await start({ model, runner: pool, concurrency: 1, maxBatch: 2, queue: 8 });
    try {
      const images = await Promise.all([40, 41, 42, 43, 44, 45].map((w) => diskPng(w, 36)));
      const first = postImage(srv.url, images[0]!); // runs alone at once: the batch in flight
      await waitForHealth(srv.url, (h) => h.queue.running_batches === 1);
      const queued = images.slice(1).map((img) => postImage(srv.url, img));
      await waitForHealth(srv.url, (h) => h.queue.waiting_for_model === 5);
      const [pid] = pool.pids;
      process.kill(pid!, signal);
      rmSync(hold);

      const lost = await first;
      expect(lost.status).toBe(503);
      expect(Number(lost.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(lost.json.error).toBe(`the inference worker running this request's batch crashed (killed by ${signal}); it is being restarted, retry in 1 s`);
      // the five that waited were not sent to the dead worker: all answered, with the right masks
      const rest = await Promise.all(queued);
      expect(rest.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      for (const [i, r] of rest.entries()) expect(Buffer.from((await maskPixels(r.bytes)).pixels).equals(Buffer.from((await reference.segment(images[i + 1]!)).mask))).toBe(true);

      expect(pool.pids).toHaveLength(1);
      expect(pool.pids).not.toContain(pid);
      const h = await health(srv.url);
      expect(h.code).toBe(200);
      expect(h.body).toMatchObject({ status: 'ok', workers: { alive: 1, configured: 1, restarts: 1, crash_looping: 0 }, requests: { ok: 5, worker_lost: 1, server_errors: 0 } });
      const m = await metrics(srv.url);
      expect(valueOf(m, 'mobileutr_worker_restarts_total', { kind: 'inference' })).toBe(1);
      expect(valueOf(m, 'mobileutr_http_requests_total', { route: '/v1/segment', method: 'POST', status: '503' })).toBe(1);
      expect((await postImage(srv.url, images[0]!)).status).toBe(200);
    } finally {
      rmSync(hold, { force: true });
      await srv.close();
      await pool.close();
    }
  });
});

describe('mobileutr serve under load', () => {
  it('SIGSEGV and then SIGKILL to worker processes: the server keeps answering, nothing but the batches in flight fails, /metrics counts both restarts', async () => {
    const weights = join(dir, 'w.safetensors');
    await saveWeights(await testModel(128), weights);
    const s = await serveCli('--weights', weights, '--concurrency', '2', '--max-batch', '2', '--queue', '16');
    try {
      const pidsIn = (log: string) => [...log.matchAll(/inference worker (\d) ready \(pid (\d+)\)/g)].map((m) => ({ index: Number(m[1]), pid: Number(m[2]) }));
      await waitForLog(s, /inference worker 1 ready/);
      const [w0, w1] = pidsIn(s.log());
      expect(new Set([w0!.index, w1!.index])).toEqual(new Set([0, 1]));
      const image = await diskPng(120, 100);

      // four clients send requests one after another for the whole test
      const answers: { status: number; error?: string; retryAfter: string | null }[] = [];
      let sending = true;
      const clients = Array.from({ length: 4 }, async () => {
        while (sending) {
          const r = await postImage(s.url, image);
          answers.push({ status: r.status, error: r.json?.error, retryAfter: r.headers.get('retry-after') });
        }
      });
      const servedSoFar = () => answers.filter((a) => a.status === 200).length;
      await waitUntil(() => servedSoFar() >= 8, 30_000, '8 answers');
      process.kill(w0!.pid, 'SIGSEGV');
      await waitForLog(s, new RegExp(`inference worker ${w0!.index} \\(pid ${w0!.pid}\\) died \\(killed by SIGSEGV\\)`));
      await waitUntil(() => pidsIn(s.log()).length === 3, 30_000, 'the first replacement');
      let mark = servedSoFar();
      await waitUntil(() => servedSoFar() >= mark + 8, 30_000, '8 answers after the first kill');
      process.kill(w1!.pid, 'SIGKILL');
      await waitUntil(() => pidsIn(s.log()).length === 4, 30_000, 'the second replacement');
      mark = servedSoFar();
      await waitUntil(() => servedSoFar() >= mark + 8, 30_000, '8 answers after the second kill');
      sending = false;
      await Promise.all(clients);

      // the only failures are the batches in flight at the two kills: at most max-batch (2) requests each, all
      // 503 + Retry-After with the crash named
      const failed = answers.filter((a) => a.status !== 200);
      expect(failed.length).toBeLessThanOrEqual(2 * 2);
      for (const f of failed) {
        expect(f.status).toBe(503);
        expect(f.error).toMatch(/^the inference worker running this request's batch crashed \(killed by SIG(SEGV|KILL)\); it is being restarted, retry in 1 s$/);
        expect(Number(f.retryAfter)).toBeGreaterThanOrEqual(1);
      }
      console.log(`under load: ${answers.length} answers, ${failed.length} lost with the batches in flight at the two kills`);

      const h = await health(s.url);
      expect(h.code).toBe(200);
      expect(h.body).toMatchObject({ status: 'ok', workers: { alive: 2, configured: 2, restarts: 2 }, requests: { worker_lost: failed.length, server_errors: 0 } });
      const m = await metrics(s.url);
      expect(valueOf(m, 'mobileutr_worker_restarts_total', { kind: 'inference' })).toBe(2);
      expect(valueOf(m, 'mobileutr_workers_alive', { kind: 'inference' })).toBe(2);
      expect((await postImage(s.url, image)).status).toBe(200);
      // the dead pids are gone; the log names the crash on one line each, with no stack
      expect(s.log()).toMatch(new RegExp(`inference worker ${w1!.index} \\(pid ${w1!.pid}\\) died \\(killed by SIGKILL\\)`));
      expect(s.log()).not.toMatch(/\n\s+at /);
    } finally {
      expect(await stopCli(s)).toBe(0);
    }
  });
});

describe('a worker that crashes at every start', () => {
  it('is restarted with exponential, capped backoff; /healthz is 503 meanwhile and requests fail fast; it recovers once a start succeeds', async () => {
    const crash = join(dir, 'crash-at-start');
    const lines: string[] = [];
    const restart = { baseMs: 100, maxMs: 800, stableMs: 60_000, loopAfter: 3 };
    const pool = await WorkerPool.create(model, { workers: 1, restart, testHooks: { crashAtStartWhile: crash }, log: (_level, message) => lines.push(message) });
    const srv = await start({ model, runner: pool, concurrency: 1 });
    try {
      writeFileSync(crash, '');
      process.kill(pool.pids[0]!, 'SIGKILL');
      // every replacement kills itself with SIGSEGV before loading its session
      const died = () => lines.filter((l) => /^inference worker 0 .*died/.test(l));
      await waitUntil(() => died().length >= 6, 60_000, 'six deaths');
      const h = await health(srv.url);
      expect(h.code).toBe(503);
      expect(h.body.status).toBe('inference workers crash-looping');
      expect(h.body.workers).toMatchObject({ alive: 0, configured: 1, crash_looping: 1 });
      expect(h.body.workers.restarts).toBeGreaterThanOrEqual(5);
      // the waits double from 100 ms and stop at 800 ms
      const delays = died().map((l) => Number(/restarting in (\d+) ms/.exec(l)![1]));
      expect(delays.slice(0, 6)).toEqual([100, 200, 400, 800, 800, 800]);
      expect(died().slice(1, 6).every((l) => /died while starting \(killed by SIGSEGV\)/.test(l))).toBe(true);
      expect(died()[3]).toMatch(/crash-looping: 4 crashes in a row/);
      // a request while every worker crash-loops is answered at once, 503 + Retry-After
      const t = performance.now();
      const refused = await postImage(srv.url, await diskPng(30, 30));
      expect(performance.now() - t).toBeLessThan(1000);
      expect(refused.status).toBe(503);
      expect(refused.json.error).toMatch(/^no inference worker is running: the workers crashed \d+ times in a row; (the next start is in \d+ s|a worker is starting now), retry later$/);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

      // the cause goes away: the next start succeeds (within the 800 ms cap and a start), /healthz recovers
      rmSync(crash);
      const recovered = await waitForHealth(srv.url, (x) => (x as unknown as { status: string }).status === 'ok', 30_000);
      expect(recovered).toMatchObject({ workers: { alive: 1, crash_looping: 0 } });
      expect((await health(srv.url)).code).toBe(200);
      expect((await postImage(srv.url, await diskPng(30, 30))).status).toBe(200);
      const m = await metrics(srv.url);
      expect(valueOf(m, 'mobileutr_worker_restarts_total', { kind: 'inference' })).toBe(pool.restarts);
      expect(pool.restarts).toBe(died().length);
    } finally {
      rmSync(crash, { force: true });
      await srv.close();
      await pool.close();
    }
  });

  it('at the first start, the service does not come up: one clear error', async () => {
    const crash = join(dir, 'crash-at-first-start');
    writeFileSync(crash, '');
    await expect(buildServer({ model, concurrency: 1, workerTestHooks: { crashAtStartWhile: crash } })).rejects.toThrow(/^inference worker failed to start: killed by SIGSEGV$/);
    rmSync(crash);
  });
});

describe('worker processes and the service', () => {
  it('SIGINT and SIGTERM to a worker (Ctrl-C signals the whole process group) do not stop it: the service does', async () => {
    const pool = await WorkerPool.create(model, { workers: 1 });
    try {
      const [pid] = pool.pids;
      process.kill(pid!, 'SIGINT');
      process.kill(pid!, 'SIGTERM');
      // (a signal that killed it would be delivered before it could read this batch)
      const logits = await pool.logits(new Float32Array(3 * 32 * 32).map((_, i) => Math.sin(i)), 1);
      expect(logits.length).toBe(32 * 32);
      expect(pool.pids).toEqual([pid]);
      expect(pool.restarts).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('a service killed with SIGKILL leaves no worker process behind', async () => {
    const s = await serveCli('--size', '32', '--concurrency', '2');
    await waitForLog(s, /inference worker 1 ready/);
    const pids = [...s.log().matchAll(/inference worker \d ready \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(2);
    // (an exited orphan may stay a zombie until its new parent reaps it: that is not running)
    const running = (pid: number) => {
      try {
        return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
      } catch {
        return false;
      }
    };
    expect(pids.every(running)).toBe(true);
    s.child.kill('SIGKILL');
    await s.exit;
    // each worker exits when its IPC channel to the service closes
    await waitUntil(() => !pids.some(running), 10_000, 'the workers to exit');
  });
});
