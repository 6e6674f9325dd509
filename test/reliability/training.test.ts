import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SAMPLE_DATA } from '../../src/cli/train.ts';
import { UserError } from '../../src/errors.ts';
import { readSafetensorsFile } from '../../src/io/safetensors.ts';
import { createModel } from '../../src/models/model.ts';
import { loadWeights } from '../../src/models/weights.ts';
import { loadResume } from '../../src/train/checkpoint.ts';
import { PAPER_DEFAULTS } from '../../src/train/config.ts';
import { runTraining } from '../../src/train/loop.ts';
import { BIN } from '../support/bin.ts';
import { startTraining, TINY } from '../support/training-cli.ts';

async function expectCheckpointReadable(run: string) {
  const model = createModel('mobileutr', { size: 32 });
  await loadWeights(model, join(run, 'last.safetensors'));
  const state = await loadResume(run, createModel('mobileutr', { size: 32 }));
  expect(state.position.epoch).toBeGreaterThanOrEqual(1);
}

const resumeToEnd = (run: string) => spawnSync(process.execPath, [BIN, 'train', '--resume', run], { encoding: 'utf8', timeout: 120_000 });

describe('training never loses work', () => {
  it('Ctrl-C saves a checkpoint mid-epoch and exits cleanly; --resume finishes the run', async () => {
    const run = join(mkdtempSync(join(tmpdir(), 'mobileutr-int-')), 'run');
    const t = startTraining([...TINY, '--epochs', '2', '--out', run], (out) => /epoch 1\/2 \[/.test(out));
    await t.reached;
    t.child.kill('SIGINT');
    expect(await t.done).toBe(130);
    expect(t.output()).toMatch(/saved a checkpoint at epoch [12], batch \d: continue with {2}mobileutr train --resume /);
    expect(t.output()).not.toMatch(/\n\s+at /);
    const r = resumeToEnd(run);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/epoch 2\/2 .*val IoU/);
  });

  it('kill -9 at any moment leaves the last completed checkpoint readable, and --resume continues from it', async () => {
    const run = join(mkdtempSync(join(tmpdir(), 'mobileutr-kill-')), 'run');
    for (const delayMs of [0, 150, 400]) {
      // every kill lands after at least one completed epoch, at a different point of the next one (often during a save)
      const t = existsSync(join(run, 'config.json'))
        ? startTraining(['--resume', run], (out) => /resuming/.test(out))
        : startTraining([...TINY, '--epochs', '6', '--out', run], (out) => /epoch 1\/6 {2}loss/.test(out));
      await t.reached;
      await new Promise((r) => setTimeout(r, delayMs));
      t.child.kill('SIGKILL');
      await t.done;
      await expectCheckpointReadable(run);
    }
    // what a kill during a save leaves behind: a temporary file that was never renamed
    writeFileSync(join(run, 'resume.safetensors.tmp-99999-abcdef'), 'partial write');
    const r = resumeToEnd(run);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/epoch 6\/6 .*val IoU/);
    expect(readdirSync(run).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('a full disk during a save is reported and the previous checkpoint stays intact', async (ctx) => {
    // needs a small tmpfs: root and permission to mount (not in most containers); otherwise reported as skipped
    const skip = (why: string): never => {
      console.warn(`SKIPPED the full-disk test: ${why}`);
      return ctx.skip(why);
    };
    if (process.getuid?.() !== 0) skip('needs root to mount a small tmpfs');
    const mnt = mkdtempSync(join(tmpdir(), 'mobileutr-full-'));
    // room for one epoch's files (last 5.6 MB + best 5.6 MB + resume 11.2 MB), not for the next save's temporary copy
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=25m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      rmSync(mnt, { recursive: true, force: true });
      skip(`mount not permitted here: ${(mounted.stderr || mounted.error?.message || `exit ${mounted.status}`).trim()}`);
    }
    try {
      const run = join(mnt, 'run');
      mkdirSync(run);
      const config = { ...PAPER_DEFAULTS, data: SAMPLE_DATA, trainSplit: join(SAMPLE_DATA, 'train.txt'), valSplit: join(SAMPLE_DATA, 'val.txt'), classes: 1, size: 32, batch: 4, epochs: 3, threads: 1 };
      const error = await runTraining(run, config).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(/cannot write.*(ENOSPC|no space)/i);
      await expectCheckpointReadable(run);
      expect((await readSafetensorsFile(join(run, 'resume.safetensors'))).metadata.format).toBe('mobileutr-resume-v1');
      expect(readdirSync(run).filter((f) => f.includes('.tmp'))).toEqual([]);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});

describe('train refuses bad input with one line', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, 'train', ...args], { encoding: 'utf8', timeout: 60_000 });

  it.each([
    [['--data', '/nonexistent/ds'], /\/nonexistent\/ds: dataset folder not found/],
    [['--size', '100'], /not a multiple of 16|multiple of 16/],
    [['--in-channels', '4'], /--in-channels must be 1 \(grey\) or 3 \(RGB\)/],
    [['--lr', '-1'], /--lr.*must be a positive number/],
    [['--batch', '64', '--size', '32'], /fewer than one batch of 64/],
    [['--resume', '/nonexistent/run'], /\/nonexistent\/run: not a training run/],
  ])('%j', (args, pattern) => {
    const r = cli(...args, '--out', join(mkdtempSync(join(tmpdir(), 'mobileutr-bad-')), 'run'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an image without a mask stops training unless --skip-unpaired', async () => {
    const { cpSync, rmSync } = await import('node:fs');
    const data = join(mkdtempSync(join(tmpdir(), 'mobileutr-unpaired-')), 'data');
    cpSync(SAMPLE_DATA, data, { recursive: true });
    rmSync(join(data, 'masks', '0', 'benign_001.png'));
    const r = cli('--data', data, '--size', '32', '--epochs', '1', '--out', join(data, '..', 'run'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/benign_001\.png: image without mask/);
  });
});
