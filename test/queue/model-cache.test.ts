// The queue worker's model cache (src/queue/model-cache.ts) with fake sessions, no Redis and no ONNX Runtime:
// concurrent jobs over more models than it keeps never use a released session, and none is released twice (the
// interleavings that break a cache that counts its users after an await: the first test finds both there).
// And what the worker logs for a failed job (src/queue/failure.ts).
import { describe, expect, it } from 'vitest';
import { failureOutcome, STALLED_TOO_OFTEN } from '../../src/queue/failure.ts';
import { ModelCache } from '../../src/queue/model-cache.ts';

interface FakeSession {
  name: string;
  id: number;
  users: number;
  releases: number;
}

/** A cache of fake sessions that records every misuse instead of crashing like a freed ONNX session would. */
function fakeCache(size: number, o: { delays?: () => number; failRelease?: (s: FakeSession) => boolean; failLoad?: (name: string) => boolean } = {}) {
  const problems: string[] = [];
  const sessions: FakeSession[] = [];
  const releaseErrors: unknown[] = [];
  // a delay: `n` microtask turns (n >= 0), or a timer turn (n < 0): the races of concurrent jobs lie in between
  const tick = async () => {
    const n = o.delays?.() ?? -1;
    if (n < 0) return new Promise<void>((r) => setTimeout(r, 0));
    for (let i = 0; i < n; i++) await Promise.resolve();
  };
  const cache = new ModelCache<string, FakeSession>({
    size,
    key: async (name) => {
      await tick(); // the worker stats the weights file here
      return name;
    },
    load: async (name) => {
      await tick();
      if (o.failLoad?.(name)) throw new Error(`${name}: no such file`);
      const s = { name, id: sessions.length, users: 0, releases: 0 };
      sessions.push(s);
      return s;
    },
    release: async (s) => {
      if (s.releases > 0) problems.push(`${s.name}#${s.id} released twice`);
      if (s.users > 0) problems.push(`${s.name}#${s.id} released while ${s.users} job(s) used it`);
      s.releases++;
      await tick();
      if (o.failRelease?.(s)) throw new Error(`${s.name}: release failed`);
    },
    onReleaseError: (e) => releaseErrors.push(e),
  });
  /** A job: uses the session of `name` across a few awaits, checking it is alive throughout. */
  const job = (name: string, result = name) =>
    cache.use(name, async (s) => {
      s.users++;
      try {
        for (let i = 0; i < 3; i++) {
          if (s.releases > 0) problems.push(`${s.name}#${s.id} used after its release`);
          await tick();
        }
        return result;
      } finally {
        s.users--;
      }
    });
  return { cache, job, problems, sessions, releaseErrors };
}

describe('queue worker model cache', () => {
  it('many concurrent jobs over six models (three kept): no session used after its release, none released twice', async () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const { cache, job, problems, sessions } = fakeCache(3, { delays: () => Math.floor(random() * 6) - 1 });
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    // several waves of jobs at once (like --concurrency 8), each wave's jobs starting and ending interleaved
    for (let wave = 0; wave < 50; wave++) {
      const results = await Promise.all(Array.from({ length: 8 }, () => names[Math.floor(random() * names.length)]!).map((n) => job(n)));
      expect(results.every((r) => names.includes(r))).toBe(true);
    }
    expect(problems).toEqual([]);
    expect(cache.size).toBeLessThanOrEqual(3);
    await cache.releaseAll();
    expect(cache.size).toBe(0);
    expect(problems).toEqual([]);
    expect(sessions.length).toBeGreaterThan(names.length); // evicted models were loaded again
    expect(sessions.map((s) => s.releases)).toEqual(sessions.map(() => 1));
  });

  it('an eviction releases the least recently used entries that no job uses', async () => {
    const { cache, job, problems, sessions } = fakeCache(1);
    await job('a');
    // a job on "b" ends while a job on "a" (found in the cache: now the most recent) runs: "b" goes, not "a"
    const b = cache.use('b', async () => undefined);
    const a = job('a');
    await Promise.all([a, b]);
    expect(problems).toEqual([]);
    expect(sessions.filter((s) => s.name === 'a')).toHaveLength(1); // "a" was never evicted and reloaded
    await cache.releaseAll();
    expect(sessions.map((s) => s.releases)).toEqual(sessions.map(() => 1));
  });

  it('an error releasing an evicted session does not replace the result of the job that evicted it', async () => {
    const { cache, job, problems, releaseErrors } = fakeCache(1, { failRelease: (s) => s.name === 'a' });
    await job('a');
    await expect(job('b', 'b done')).resolves.toBe('b done');
    expect(releaseErrors.map((e) => (e as Error).message)).toEqual(['a: release failed']);
    expect(problems).toEqual([]);
    await cache.releaseAll();
  });

  it('a failed load is not cached: the next job loads again', async () => {
    let missing = true;
    const { cache, job, sessions } = fakeCache(3, { failLoad: () => missing });
    await expect(job('a')).rejects.toThrow('a: no such file');
    expect(cache.size).toBe(0);
    missing = false;
    await expect(job('a')).resolves.toBe('a');
    expect(sessions).toHaveLength(1);
    await cache.releaseAll();
  });
});

describe('queue worker: what becomes of a failed job', () => {
  const unrecoverable = (message: string) => Object.assign(new Error(message), { name: 'UnrecoverableError' });

  it('an error with attempts left is retried; the last attempt fails', () => {
    expect(failureOutcome({ attemptsMade: 1, opts: { attempts: 3 } }, new Error('corrupt'), 2)).toEqual({ final: false, what: 'will retry (attempt 1 of 3)' });
    expect(failureOutcome({ attemptsMade: 3, opts: { attempts: 3 } }, new Error('corrupt'), 2)).toEqual({ final: true, what: 'failed (attempt 3 of 3)' });
    expect(failureOutcome({ attemptsMade: 1, opts: {} }, new Error('corrupt'), 2)).toEqual({ final: true, what: 'failed (attempt 1 of 1)' });
  });

  it('a job that stalled too often fails for good, attempts left or not', () => {
    expect(failureOutcome({ attemptsMade: 1, opts: { attempts: 3 } }, unrecoverable(STALLED_TOO_OFTEN), 2)).toEqual({
      final: true,
      what: 'failed, not retried (attempt 1 of 3; it stalled more than 2 times: its workers died or stopped renewing its lock)',
    });
    expect(failureOutcome({ attemptsMade: 1, opts: { attempts: 3 } }, unrecoverable('bad input'), 2)).toEqual({ final: true, what: 'failed, not retried (attempt 1 of 3; an unrecoverable error)' });
  });
});
