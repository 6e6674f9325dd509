/** Helpers of the queue tests: real redis-server, real worker processes, real image files. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createModel } from '../../src/models/model.ts';
import { saveWeights } from '../../src/models/weights.ts';
import type { SegmentJob, SegmentResult } from '../../src/queue/jobs.ts';
import { cli, sleep, type CliResult } from '../reliability/support.ts';
import { BIN } from '../support/bin.ts';

export { startRedis, type RedisServer } from '../../scripts/redis-server.ts';
export { sampleImages } from '../../scripts/sample-images.ts';
export { cli, sleep, tempDir, expectCleanFailure } from '../reliability/support.ts';

/** A small MobileUtr weights file (seeded): every worker and `predict` load the same one. */
export async function smallWeights(path: string, size = 32): Promise<string> {
  await saveWeights(createModel('mobileutr', { size, seed: 3 }), path);
  return path;
}

export interface WorkerProcess {
  child: ChildProcess;
  /** The name BullMQ records as a job's processedBy. */
  name: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the worker says it takes jobs; rejects if it exits before. */
  ready: () => Promise<void>;
}

/** Starts `mobileutr worker --redis url ...args` as a child process. */
export function startWorker(url: string, args: string[] = []): WorkerProcess {
  const child = spawn(process.execPath, [BIN, 'worker', '--redis', url, '--threads', '1', ...args], {
    env: { ...process.env, MOBILEUTR_DEBUG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let markReady: () => void;
  const ready = new Promise<void>((r) => (markReady = r));
  const collect = (d: Buffer) => {
    out += d;
    if (out.includes('taking jobs from queue')) markReady();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  const failed = () => exited.then(() => Promise.reject(new Error(`worker exited before it was ready:\n${out}`)));
  return { child, name: `${hostname()}-${child.pid}`, output: () => out, exited, ready: () => Promise.race([ready, failed()]) };
}

/** Stops a worker that may still run (test clean-up). */
export async function killWorker(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await w.exited;
}

/** A BullMQ handle on the queue, to look at jobs as the tests check them. */
export function openQueue(url: string, name = 'mobileutr'): { queue: Queue<SegmentJob, SegmentResult>; close: () => Promise<void> } {
  const client = new Redis(url, { maxRetriesPerRequest: null });
  client.on('error', () => undefined); // the Redis-restart test drops it on purpose
  const queue = new Queue<SegmentJob, SegmentResult>(name, { connection: client });
  queue.on('error', () => undefined);
  return {
    queue,
    close: async () => {
      await queue.close();
      client.disconnect();
    },
  };
}

/** Polls `check` every `everyMs` until it returns a value (not undefined/false) or `timeoutMs` passes. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Files of a folder, sorted. */
export const filesOf = (dir: string): string[] => readdirSync(dir).sort();

/** The files of `a` and `b` (same names) compared byte for byte; returns the names that differ. */
export function differing(a: string, b: string, names: string[]): string[] {
  return names.filter((n) => !readFileSync(join(a, n)).equals(readFileSync(join(b, n))));
}

/** `mobileutr queue <sub> --redis url ...args`. */
export function queueCli(url: string, sub: string, args: string[] = []): Promise<CliResult> {
  return cli(['queue', sub, '--redis', url, ...args], { timeoutMs: 90_000 });
}
