import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SAMPLE_DATA } from '../../src/cli/train.ts';
import { UserError } from '../../src/errors.ts';
import { createModel } from '../../src/models/model.ts';
import { loadWeights } from '../../src/models/weights.ts';
import { PAPER_DEFAULTS, type TrainConfig } from '../../src/train/config.ts';
import { runTraining } from '../../src/train/loop.ts';

/** A tiny but complete run on the bundled sample: 32x32, batch 4 -> 8 steps per epoch. */
const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...PAPER_DEFAULTS,
  data: SAMPLE_DATA,
  trainSplit: join(SAMPLE_DATA, 'train.txt'),
  valSplit: join(SAMPLE_DATA, 'val.txt'),
  classes: 1,
  size: 32,
  batch: 4,
  epochs: 2,
  threads: 1,
  ...over,
});

const tmp = () => mkdtempSync(join(tmpdir(), 'mobileutr-run-'));

describe('training runs', () => {
  it('write config, checkpoints, metrics and curves, and resume equals an uninterrupted run', async () => {
    const straight = tmp();
    const a = await runTraining(straight, config());
    expect(a.status).toBe('finished');
    for (const f of ['config.json', 'train.txt', 'val.txt', 'last.safetensors', 'best.safetensors', 'resume.safetensors', 'metrics.jsonl', 'metrics.csv', 'curves.png'])
      expect(existsSync(join(straight, f)), f).toBe(true);
    const records = readFileSync(join(straight, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => r.epoch)).toEqual([1, 2]);
    expect(records[1].step).toBe(16);
    expect(records.every((r) => Number.isFinite(r.train_loss) && r.val_iou >= 0 && r.val_iou <= 1)).toBe(true);
    expect(readFileSync(join(straight, 'metrics.csv'), 'utf8').trim().split('\n')).toHaveLength(3);

    // the same run, stopped mid-epoch (as by Ctrl-C) after 5 steps, then resumed twice
    const split = tmp();
    const b1 = await runTraining(split, config(), { maxSteps: 5 });
    expect(b1.status).toBe('interrupted');
    expect(b1.position).toMatchObject({ epoch: 0, batchInEpoch: 5 });
    const b2 = await runTraining(split, config(), { resume: true, maxSteps: 6 });
    expect(b2.position).toMatchObject({ epoch: 1, batchInEpoch: 3 });
    const b3 = await runTraining(split, config(), { resume: true });
    expect(b3.status).toBe('finished');

    for (const [name, w] of a.model.weights) expect(b3.model.weights.get(name), name).toEqual(w);
    expect(b3.position.best).toEqual(a.position.best);
    expect(b3.position.history.map((r) => r.train_loss)).toEqual(a.position.history.map((r) => r.train_loss));
    // best.safetensors loads as a plain state_dict
    const reloaded = createModel('mobileutr', { size: 32 });
    await loadWeights(reloaded, join(split, 'best.safetensors'));
  });

  it('a non-finite loss stops with a clear message, or skips the batch when asked', async () => {
    const failure = await runTraining(tmp(), config({ lr: 1e30, epochs: 1 })).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(UserError);
    expect((failure as Error).message).toMatch(/non-finite (loss|gradient) at epoch 1, step \d+ .*weights were not updated/);
    const skipped = await runTraining(tmp(), config({ lr: 1e30, epochs: 1, skipNonFinite: true }));
    expect(skipped.status).toBe('finished');
    expect(skipped.position.history[0]!.skipped_batches).toBeGreaterThan(0);
  });

  it('refuses a batch larger than the training set and a class count that does not fit the masks', async () => {
    await expect(runTraining(tmp(), config({ batch: 64 }))).rejects.toThrow(/fewer than one batch/);
    await expect(runTraining(tmp(), config({ classes: 3 }))).rejects.toThrow(/needs 1 output classes/);
  });
});
