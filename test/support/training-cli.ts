import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { SAMPLE_DATA } from '../../src/cli/train.ts';
import { BIN } from './bin.ts';

/** A tiny training run on the repository's sample data. */
export const TINY = ['--size', '32', '--batch', '4', '--threads', '1', '--data', SAMPLE_DATA, '--split', join(SAMPLE_DATA, 'train.txt'), '--val-split', join(SAMPLE_DATA, 'val.txt')];

/** Starts `mobileutr train`, resolves `reached` when `ready(stdout+stderr)` holds, and returns the child. */
export function startTraining(args: string[], ready: (out: string) => boolean) {
  const child = spawn(process.execPath, [BIN, 'train', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const done = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  const reached = new Promise<void>((resolve, reject) => {
    const check = (chunk: Buffer) => {
      out += chunk.toString();
      if (ready(out)) resolve();
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.on('exit', () => reject(new Error(`training exited before it was ready:\n${out}`)));
  });
  return { child, reached, done, output: () => out };
}
