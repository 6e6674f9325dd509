/** Shared helpers of the reliability suite: real files on disk, the real CLI in a child process. */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { expect } from 'vitest';
import { BIN } from '../support/bin.ts';


export function tempDir(prefix = 'mobileutr-rel-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function put(path: string, data: string | Uint8Array): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
  return path;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `mobileutr ...args` (test/support/bin.ts) and collects its output. */
export function cli(args: string[], o: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const t = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, MOBILEUTR_DEBUG: '', ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t });
    });
  });
}

/** Runs CLI invocations `concurrency` at a time (the machine has 2 cores), results in order. */
export async function cliAll(cases: string[][], concurrency = 3): Promise<CliResult[]> {
  const out: CliResult[] = new Array(cases.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < cases.length) {
        const i = next++;
        out[i] = await cli(cases[i]!);
      }
    }),
  );
  return out;
}

const STACK = /\n\s+at |node_modules\/|\.ts:\d+:\d+|internal error/;

/**
 * A clean user-facing failure: exit status 1 (not a crash or a signal), exactly one error line that matches
 * `pattern` (and names the file when `file` is given), no stack trace anywhere.
 */
export function expectCleanFailure(r: CliResult, pattern: RegExp, file?: string): string {
  const what = `stderr: ${r.stderr}\nstdout: ${r.stdout}`;
  expect(r.signal, what).toBeNull();
  expect(r.code, what).toBe(1);
  expect(r.stderr + r.stdout, what).not.toMatch(STACK);
  const errors = r.stderr.split('\n').filter((l) => /^(mobileutr: )?error: /.test(l));
  expect(errors, what).toHaveLength(1);
  expect(errors[0], what).toMatch(pattern);
  if (file) expect(errors[0], what).toContain(file);
  return errors[0]!;
}

/** RGB pixels with some structure (a bright disk on a gradient). */
export function diskPixels(width: number, height: number, channels = 3): Uint8Array {
  const px = new Uint8Array(width * height * channels);
  const r = Math.min(width, height) / 3;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const inside = (x - width / 2) ** 2 + (y - height / 2) ** 2 < r * r;
      for (let c = 0; c < channels; c++) px[(y * width + x) * channels + c] = inside ? 200 + c * 20 : Math.round((x * 60) / width) + c * 10;
    }
  return px;
}

export function diskPng(width: number, height: number, channels: 1 | 3 = 3): Promise<Buffer> {
  return sharp(diskPixels(width, height, channels), { raw: { width, height, channels } }).png().toBuffer();
}

/** A 0/255 mask PNG: a disk of foreground. */
export function maskPng(width: number, height: number, o: { fg?: number; bg?: number } = {}): Promise<Buffer> {
  const px = new Uint8Array(width * height);
  const r = Math.min(width, height) / 3;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) px[y * width + x] = (x - width / 2) ** 2 + (y - height / 2) ** 2 < r * r ? (o.fg ?? 255) : (o.bg ?? 0);
  return sharp(px, { raw: { width, height, channels: 1 } }).png().toBuffer();
}

/** A dataset folder with `ids` as good image/mask pairs (w x h). */
export async function goodDataset(root: string, ids: string[], w = 40, h = 30): Promise<string> {
  for (const id of ids) {
    put(join(root, 'images', `${id}.png`), await diskPng(w, h));
    put(join(root, 'masks', '0', `${id}.png`), await maskPng(w, h));
  }
  return root;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
