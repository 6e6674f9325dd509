// Inference latency in a browser tab: onnxruntime-web (wasm, SIMD, threads) in headless Chromium, driven by
// playwright-core. Both are optional: they are dev tools, not dependencies of the package.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join, normalize } from 'node:path';
import { UserError } from '../errors.ts';

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

const PAGE = `<!doctype html><meta charset="utf-8"><title>latency</title><script type="module">
import * as ort from '/ort/ort.wasm.min.mjs';
ort.env.wasm.wasmPaths = '/ort/';
window.measure = async ({ threads, size, runs, warmup }) => {
  ort.env.wasm.numThreads = threads;
  const bytes = new Uint8Array(await (await fetch('/model.onnx')).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const data = new Float32Array(3 * size * size).map((_, i) => Math.sin(i));
  const input = new ort.Tensor('float32', data, [1, 3, size, size]);
  for (let i = 0; i < warmup; i++) await session.run({ input });
  const times = [];
  for (let i = 0; i < runs; i++) { const t = performance.now(); await session.run({ input }); times.push(performance.now() - t); }
  await session.release();
  return { times, isolated: crossOriginIsolated };
};
window.ready = true;
</script>`;

function ortDist(): string {
  return dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
}

/** A loopback server for the page, onnxruntime-web's files and the model, cross-origin isolated (wasm threads). */
async function serve(model: Uint8Array): Promise<Server> {
  const dist = ortDist();
  const types: Record<string, string> = { '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
  const server = createServer(async (req, res) => {
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
    const url = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (url === '/') return res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end(PAGE);
    if (url === '/model.onnx') return res.writeHead(200, { ...headers, 'Content-Type': 'application/octet-stream' }).end(model);
    const file = url.startsWith('/ort/') ? normalize(join(dist, url.slice(5))) : '';
    if (!file.startsWith(dist) || !existsSync(file)) return res.writeHead(404, headers).end();
    res.writeHead(200, { ...headers, 'Content-Type': types[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream' }).end(await readFile(file));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return server;
}

export interface BrowserLatency {
  ms: number[];
  isolated: boolean;
}

/** Runs `model` in headless Chromium: `runs` timed runs at batch 1 after `warmup`. */
export async function browserLatency(model: Uint8Array, o: { size: number; threads: number; runs: number; warmup?: number; chromium?: string }): Promise<BrowserLatency> {
  const executablePath = o.chromium ?? DEFAULT_CHROMIUM;
  if (!existsSync(executablePath)) throw new UserError(`browser latency needs Chromium at ${executablePath} (apt-get install chromium, or --chromium PATH)`);
  let playwright: typeof import('playwright-core');
  try {
    playwright = await import('playwright-core');
  } catch {
    throw new UserError('browser latency needs playwright-core (npm install --save-dev playwright-core)');
  }
  const server = await serve(model);
  let browser: import('playwright-core').Browser | undefined;
  try {
    try {
      browser = await playwright.chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    } catch (e) {
      // playwright's message runs over many lines (its call log): the first says why
      throw new UserError(`browser latency: cannot start Chromium at ${executablePath}: ${String((e as Error)?.message ?? e).split('\n')[0]}`);
    }
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    const r = await page.evaluate(
      (args) => (window as unknown as { measure(a: typeof args): Promise<{ times: number[]; isolated: boolean }> }).measure(args),
      { threads: o.threads, size: o.size, runs: o.runs, warmup: o.warmup ?? 3 },
    );
    return { ms: r.times, isolated: r.isolated };
  } finally {
    await browser?.close();
    server.close();
  }
}
