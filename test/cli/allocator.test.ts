import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALLOCATOR_MARK, needsTrainingAllocator, TRAINING_MALLOC_ENV } from '../../src/cli/allocator.ts';
import { BIN } from '../support/bin.ts';
import { startTraining, TINY } from '../support/training-cli.ts';

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

describe('training runs with glibc malloc settings (src/cli/allocator.ts)', () => {
  it('applies where glibc is the C library, and not twice', () => {
    expect(needsTrainingAllocator({})).toBe(glibc);
    expect(needsTrainingAllocator({ [ALLOCATOR_MARK]: '1' })).toBe(false);
    expect(needsTrainingAllocator({ [ALLOCATOR_MARK]: '0' })).toBe(false);
  });

  it.runIf(glibc)('the training process has the settings; Ctrl-C reaches it once; kill -9 of the parent ends it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'mobileutr-alloc-'));
    const firstEpoch = (text: string) => /epoch 1\/\d+ \[/.test(text);
    const t = startTraining([...TINY, '--epochs', '3', '--out', join(out, 'a')], firstEpoch);
    await t.reached;
    const [trainer] = childrenOf(t.child.pid!);
    expect(trainer).toBeDefined();
    const environ = readFileSync(`/proc/${trainer}/environ`, 'utf8').split('\0');
    for (const [k, v] of Object.entries(TRAINING_MALLOC_ENV)) expect(environ).toContain(`${k}=${v}`);
    t.child.kill('SIGINT');
    expect(await t.done).toBe(130);
    expect(t.output()).toMatch(/interrupt: finishing the current step/);
    expect(t.output()).not.toMatch(/interrupted again/);

    const k = startTraining([...TINY, '--epochs', '50', '--out', join(out, 'b')], firstEpoch);
    await k.reached;
    const [orphan] = childrenOf(k.child.pid!);
    k.child.kill('SIGKILL');
    await k.done;
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
