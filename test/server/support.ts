import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { createModel, type SegmentationModel } from '../../src/models/model.ts';
import { prepareImage } from '../../src/pipeline/stages.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';
import { buildServer, type ServerOptions } from '../../src/server/app.ts';
import type { BatchRunner } from '../../src/server/worker-pool.ts';
import { BIN } from '../support/bin.ts';

/** A PNG with structure (a bright disk on a dark gradient) so masks are not uniform. */
export async function diskPng(width: number, height: number, channels: 1 | 3 = 3): Promise<Buffer> {
  const pixels = new Uint8Array(width * height * channels);
  const r = Math.min(width, height) / 3;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const inside = (x - width / 2) ** 2 + (y - height / 2) ** 2 < r * r;
      for (let c = 0; c < channels; c++) pixels[(y * width + x) * channels + c] = inside ? 200 + c * 20 : Math.round((x * 60) / width) + c * 10;
    }
  return sharp(pixels, { raw: { width, height, channels } }).png().toBuffer();
}

/**
 * A small model whose binary masks are neither empty nor full: default weights give nearly constant logits, so the
 * head is scaled up and its bias centred on a reference image.
 */
export async function testModel(size = 32, seed = 0): Promise<SegmentationModel> {
  const model = createModel('mobileutr', { size, seed });
  const w = model.weights.get('head.weight')!;
  for (let i = 0; i < w.length; i++) w[i]! *= 300;
  const seg = await Segmenter.create(model);
  const logits = await seg.logits((await prepareImage(await diskPng(size, size), model.options)).input, 1);
  await seg.release();
  const sorted = Float32Array.from(logits).sort();
  model.weights.get('head.bias')![0]! -= sorted[Math.floor(sorted.length * 0.6)]!;
  return model;
}

export interface Running {
  url: string;
  app: FastifyInstance;
  close: () => Promise<void>;
}

/** Starts the service on 127.0.0.1, a free port. */
export async function start(options: ServerOptions): Promise<Running> {
  const app = await buildServer(options);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, app, close: () => app.close() };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A runner that holds every batch `ms` before running it (the event loop stays free), counting batch sizes. */
export function slowRunner(inner: BatchRunner, ms: number): BatchRunner & { sizes: number[] } {
  const sizes: number[] = [];
  return {
    sizes,
    async logits(batch, n) {
      sizes.push(n);
      await sleep(ms);
      return inner.logits(batch, n);
    },
  };
}

export async function postImage(url: string, body: Uint8Array | string, headers: Record<string, string> = { 'content-type': 'image/png' }) {
  const res = await fetch(`${url}/v1/segment`, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers });
  const type = res.headers.get('content-type') ?? '';
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, type, headers: res.headers, bytes, json: type.includes('json') ? JSON.parse(bytes.toString('utf8')) : undefined };
}

/** Single-channel pixels of a mask PNG. */
export async function maskPixels(png: Uint8Array): Promise<{ pixels: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { pixels: new Uint8Array(data), width: info.width, height: info.height };
}

/** Polls `ready` until it holds (at most `ms`). */
export async function waitUntil(ready: () => boolean, ms = 10_000, what = 'the condition'): Promise<void> {
  const end = performance.now() + ms;
  while (!ready()) {
    if (performance.now() > end) throw new Error(`${what} did not hold within ${ms} ms`);
    await sleep(10);
  }
}

/** Polls GET /healthz until `ready` holds (at most `ms`). */
export async function waitForHealth(url: string, ready: (h: { queue: { in_flight: number; waiting_for_model: number; running_batches: number } }) => boolean, ms = 10_000) {
  const end = performance.now() + ms;
  for (;;) {
    const h = await (await fetch(`${url}/healthz`)).json();
    if (ready(h)) return h;
    if (performance.now() > end) throw new Error(`healthz never reached the state: ${JSON.stringify(h)}`);
    await sleep(10);
  }
}


export interface CliServer {
  child: ChildProcess;
  /** http://127.0.0.1:PORT, or https:// with --tls-cert */
  url: string;
  /** Everything it wrote so far (stdout and stderr). */
  log: () => string;
  exit: Promise<number | null>;
}

/** Starts `mobileutr serve` on 127.0.0.1, a free port; resolves once it logs where it listens. */
export function serveCli(...args: string[]): Promise<CliServer> {
  return serveCliWith({}, ...args);
}

/** serveCli with the child's environment and working directory (args after the defaults, so they can override them). */
export function serveCliWith(o: { env?: NodeJS.ProcessEnv; cwd?: string }, ...args: string[]): Promise<CliServer> {
  const child = spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env, cwd: o.cwd });
  let out = '';
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line in 60 s:\n${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening at (https?:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!, log: () => out, exit });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exit.then((code) => reject(new Error(`exited with ${code} before listening:\n${out}`)));
  });
}

/** Waits until the server's log matches `pattern` (at most `ms`). */
export async function waitForLog(s: Pick<CliServer, 'log'>, pattern: RegExp, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!pattern.test(s.log())) {
    if (performance.now() > end) throw new Error(`no log line matching ${pattern} in ${ms} ms:\n${s.log()}`);
    await sleep(20);
  }
}

/** Stops a CLI server with SIGINT and waits for it to exit. */
export async function stopCli(s: CliServer): Promise<number | null> {
  if (s.child.exitCode === null) s.child.kill('SIGINT');
  return s.exit;
}
