// `mobileutr compare` on the bundled sample with a tiny schedule: the run folders, the resumed comparison (finished
// runs kept, an interrupted one continued), the table's numbers against the run folders and `info`, the plot, and
// the one-line errors.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN } from '../support/bin.ts';

const SAMPLE = new URL('../../samples/busi-mini', import.meta.url).pathname;
const TINY = ['--data', SAMPLE, '--models', 'mobileutr', '--size', '32', '--batch', '8', '--threads', '1', '--latency-size', '32', '--latency-runs', '2'];

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const metricsLines = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; val_iou: number; val_f1: number });

function csvRows(path: string): Record<string, string>[] {
  const [head, ...rows] = readFileSync(path, 'utf8').trim().split('\n');
  const keys = head!.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [keys[i]!, v])));
}

describe('mobileutr compare', () => {
  const out = mkdtempSync(join(tmpdir(), 'mobileutr-compare-'));
  const interrupted = mkdtempSync(join(tmpdir(), 'mobileutr-compare-int-'));
  const split = (k: number) => join(out, 'busi-mini', 'mobileutr', `split${k}`);
  afterAll(() => [out, interrupted].forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('trains each split as a run folder and writes the table, CSV, HTML and plot from them', () => {
    const r = cli('compare', ...TINY, '--splits', '1', '--epochs', '1', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(split(1), 'best.safetensors'))).toBe(true);
    const [row] = csvRows(join(out, 'table.csv'));
    const info = JSON.parse(cli('info', '--model', 'mobileutr', '--size', '32', '--json').stdout) as { params: number; macs: number };
    expect(Number(row!.params)).toBe(info.params);
    expect(Number(row!.macs)).toBe(info.macs);
    const [epoch] = metricsLines(split(1));
    expect(Number(row!.iou_mean)).toBeCloseTo(epoch!.val_iou, 6);
    expect(Number(row!.f1_mean)).toBeCloseTo(epoch!.val_f1, 6);
    expect(Number(row!.cpu_ms)).toBeGreaterThan(0);
    expect(row!.browser_ms).toBe('');
    expect(readFileSync(join(out, 'table.md'), 'utf8')).toContain(`| busi-mini | mobileutr | 1.39 |`);
    expect(readFileSync(join(out, 'table.html'), 'utf8')).toContain('<svg');
    return sharp(join(out, 'plot-busi-mini.png'))
      .metadata()
      .then((m) => expect([m.format, m.width, m.height]).toEqual(['png', 640, 420]));
  }, 300_000);

  it('keeps finished runs when the comparison grows, and the table gives mean ± sample std over splits', () => {
    const before = statSync(join(split(1), 'metrics.jsonl')).mtimeMs;
    const r = cli('compare', ...TINY, '--splits', '1,2', '--epochs', '1', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('[1/2] mobileutr on busi-mini, split 1: finished earlier');
    expect(statSync(join(split(1), 'metrics.jsonl')).mtimeMs).toBe(before);
    const ious = [1, 2].map((k) => metricsLines(split(k))[0]!.val_iou);
    const [row] = csvRows(join(out, 'table.csv'));
    const mean = (ious[0]! + ious[1]!) / 2;
    expect(Number(row!.iou_mean)).toBeCloseTo(mean, 6);
    expect(Number(row!.iou_std)).toBeCloseTo(Math.abs(ious[0]! - ious[1]!) / Math.SQRT2, 6);
    expect(row!.splits).toBe('2');
  }, 300_000);

  it('refuses, in one line, to resume a run of another schedule', () => {
    const r = cli('compare', ...TINY, '--splits', '1', '--epochs', '2', '--out', out);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^mobileutr: error: .*split1 holds a run of 1 epochs at 32x32, batch 8, not this comparison's schedule/);
  }, 120_000);

  it('stops on SIGINT with a checkpoint, and the same command resumes the run exactly where it stopped', async () => {
    const dir = interrupted;
    const args = [BIN, 'compare', ...TINY, '--splits', '1', '--epochs', '2', '--out', dir];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    const code = await new Promise<number | null>((done) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (/epoch 1\/2 {2}loss/.test(stdout) && !child.killed) child.kill('SIGINT');
      });
      child.stderr.resume();
      child.on('close', done);
    });
    expect(code, stdout).toBe(130);
    expect(stdout).toContain('run the same command again to resume');
    const runDir = join(dir, 'busi-mini', 'mobileutr', 'split1');
    expect(metricsLines(runDir).map((l) => l.epoch)).toEqual([1]);
    const again = cli(...args.slice(1));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('split 1: resuming');
    expect(metricsLines(runDir).map((l) => l.epoch)).toEqual([1, 2]);
  }, 300_000);

  it('names a bad option in one line', () => {
    for (const [args, message] of [
      [['--schedule', 'nope'], /unknown --schedule nope: one of cpu-e5-64/],
      [['--models', 'mobileutr,nope'], /unknown model nope: one of mobileutr/],
      [['--splits', '0'], /--splits takes numbers >= 1, got 0/],
      [['--models', 'mobileutr,unext', '--size', '48'], /unext needs --size to be a multiple of 32, got 48/],
      [['--models', 'unext', '--latency-size', '240'], /unext needs --latency-size to be a multiple of 32, got 240/],
    ] as const) {
      const r = cli('compare', '--data', SAMPLE, ...args, '--out', out);
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(message);
    }
    const missing = cli('compare', '--data', join(out, 'nowhere'));
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^mobileutr: error: --data .*nowhere: .*does not exist$/);
  });
});
