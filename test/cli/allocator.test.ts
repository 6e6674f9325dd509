import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALLOCATOR_MARK, needsTrainingAllocator, TRAINING_MALLOC_ENV } from '../../src/cli/allocator.ts';
import { SAMPLE_DATA } from '../../src/cli/train.ts';

const BIN = new URL('../../bin/mobileutr.js', import.meta.url).pathname;
const TINY = ['--size', '32', '--batch', '4', '--threads', '1', '--data', SAMPLE_DATA, '--split', join(SAMPLE_DATA, 'train.txt'), '--val-split', join(SAMPLE_DATA, 'val.txt')];
const glibc = Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);

/** The pids of the direct children of `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  const path = `/proc/${pid}/task/${pid}/children`;
  return existsSync(path) ? readFileSync(path, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : [];
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return !/^\S+ \S+ Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/\(.*\)/, 'x'));
  } catch {
    return false;
  }
};

function startTraining(args: string[]) {
  const wrapper = spawn(process.execPath, [BIN, 'train', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const firstEpoch = new Promise<void>((resolve, reject) => {
    const check = (chunk: Buffer) => {
      out += chunk.toString();
      if (/epoch 1\/\d+ \[/.test(out)) resolve();
    };
    wrapper.stdout.on('data', check);
    wrapper.stderr.on('data', check);
    wrapper.on('exit', () => reject(new Error(`training exited early:\n${out}`)));
  });
  const exited = new Promise<number | null>((resolve) => wrapper.on('exit', (code) => resolve(code)));
  return { wrapper, firstEpoch, exited, output: () => out };
}

describe('training runs with glibc malloc settings (src/cli/allocator.ts)', () => {
  it('applies where glibc is the C library, and not twice', () => {
    expect(needsTrainingAllocator({})).toBe(glibc);
    expect(needsTrainingAllocator({ [ALLOCATOR_MARK]: '1' })).toBe(false);
    expect(needsTrainingAllocator({ [ALLOCATOR_MARK]: '0' })).toBe(false);
  });

  it.runIf(glibc)('the training process has the settings; Ctrl-C reaches it once; kill -9 of the parent ends it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'mobileutr-alloc-'));
    const t = startTraining([...TINY, '--epochs', '3', '--out', join(out, 'a')]);
    await t.firstEpoch;
    const [trainer] = childrenOf(t.wrapper.pid!);
    expect(trainer).toBeDefined();
    const environ = readFileSync(`/proc/${trainer}/environ`, 'utf8').split('\0');
    for (const [k, v] of Object.entries(TRAINING_MALLOC_ENV)) expect(environ).toContain(`${k}=${v}`);
    t.wrapper.kill('SIGINT');
    expect(await t.exited).toBe(130);
    expect(t.output()).toMatch(/interrupt: finishing the current step/);
    expect(t.output()).not.toMatch(/interrupted again/);

    const k = startTraining([...TINY, '--epochs', '50', '--out', join(out, 'b')]);
    await k.firstEpoch;
    const [orphan] = childrenOf(k.wrapper.pid!);
    k.wrapper.kill('SIGKILL');
    await k.exited;
    const deadline = Date.now() + 10_000;
    while (alive(orphan!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(alive(orphan!)).toBe(false);
  }, 120_000);

  it('errors keep their message and exit status through the parent', () => {
    const r = spawnSync(process.execPath, [BIN, 'train', '--data', '/nonexistent/dataset'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\/nonexistent\/dataset: dataset folder not found/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
