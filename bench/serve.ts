// HTTP service benchmark: starts `mobileutr serve` as a child process on 127.0.0.1 and drives it with bounded
// closed-loop load (N clients, each sending its next request when the last one is answered) for a bounded time and
// request count per level; prints requests/s (answers within the timed window), latency percentiles of the 200s,
// 503s and the mean batch size the service formed.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import sharp from 'sharp';

const opts = new Command()
  .description('benchmark `mobileutr serve` on 127.0.0.1 with bounded concurrent load')
  .option('--model <name>', 'model', 'mobileutr')
  .option('--size <n>', 'model input size', '256')
  .option('--clients <list>', 'concurrent clients per level, comma-separated', '1,4,8,32')
  .option('--seconds <n>', 'time per level', '5')
  .option('--max-requests <n>', 'requests per level at most', '3000')
  .option('--concurrency <n>', 'server inference workers', '2')
  .option('--threads <n>', 'server ONNX Runtime threads per worker', '1')
  .option('--max-batch <n>', 'server max batch', '4')
  .option('--queue <n>', 'server queue', '16')
  .option('--images <dir>', 'PNG/JPEG images to send (cycled); default: ../shared/datasets/busi/images, else a synthetic 512x512 PNG')
  .option('--count <n>', 'images taken from the folder', '16')
  .option('--busy-wait-ms <n>', 'how long a client waits after a 503 before its next request', '50')
  .parse()
  .opts();

const HOST = '127.0.0.1';
const BIN = fileURLToPath(new URL('../bin/mobileutr.js', import.meta.url));

async function loadImages(): Promise<{ bodies: Uint8Array<ArrayBuffer>[]; label: string }> {
  const dir = opts.images ?? fileURLToPath(new URL('../../shared/datasets/busi/images/', import.meta.url));
  if (existsSync(dir)) {
    const files = readdirSync(dir)
      .filter((f) => /\.(png|jpe?g)$/i.test(f))
      .sort()
      .slice(0, Number(opts.count));
    if (files.length > 0) {
      const bodies = files.map((f) => new Uint8Array(readFileSync(`${dir}/${f}`)) as Uint8Array<ArrayBuffer>);
      const sizes = await Promise.all(
        bodies.map(async (b) => {
          const { width, height } = await sharp(b).metadata();
          return width * height;
        }),
      );
      const kb = bodies.reduce((n, b) => n + b.length, 0) / bodies.length / 1024;
      return { bodies, label: `${files.length} images from ${dir} (mean ${(sizes.reduce((a, b) => a + b, 0) / sizes.length / 1e3).toFixed(0)} kpixels, ${kb.toFixed(0)} KB)` };
    }
  }
  const w = 512;
  const px = new Uint8Array(w * w).map((_, i) => ((i % w) ^ Math.floor(i / w)) & 255);
  return { bodies: [new Uint8Array(await sharp(px, { raw: { width: w, height: w, channels: 1 } }).png().toBuffer())], label: 'a synthetic 512x512 grey PNG' };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, HOST, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);

async function healthz(url: string): Promise<{ batches: { count: number; images: number }; queue: { in_flight: number } }> {
  return (await fetch(`${url}/healthz`)).json() as never;
}

const { bodies, label } = await loadImages();
const port = await freePort();
const url = `http://${HOST}:${port}`;
const serverArgs = [
  'serve',
  ...['--host', HOST, '--port', String(port), '--model', opts.model, '--size', opts.size],
  ...['--concurrency', opts.concurrency, '--threads', opts.threads, '--max-batch', opts.maxBatch, '--queue', opts.queue, '--log-level', 'error'],
];
const child = spawn(process.execPath, [BIN, ...serverArgs], { stdio: ['ignore', 'inherit', 'inherit'] });
const childExit = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
const stopServer = async () => {
  if (child.exitCode === null) child.kill('SIGTERM');
  return childExit;
};
process.on('SIGINT', () => void stopServer().then(() => process.exit(130)));

try {
  const started = performance.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    if (performance.now() - started > 60_000) throw new Error('server did not answer /healthz within 60 s');
    try {
      await healthz(url);
      break;
    } catch {
      await sleep(200);
    }
  }
  // warm-up: every image once, a few in parallel
  await Promise.all(bodies.map((b) => fetch(`${url}/v1/segment`, { method: 'POST', body: b, headers: { 'content-type': 'application/octet-stream' } }).then((r) => r.arrayBuffer())));

  const capacity = Number(opts.concurrency) * Number(opts.maxBatch) + Number(opts.queue);
  console.log(`server: mobileutr serve ${serverArgs.slice(1).join(' ')}  (child process; at most ${capacity} requests held)`);
  console.log(`load: ${label}; closed loop, a client waits ${opts.busyWaitMs} ms after a 503; ${opts.seconds} s or ${opts.maxRequests} requests per level`);
  console.log('clients  requests     ok    503  other   ok req/s   p50 ms   p95 ms   p99 ms  mean batch');

  for (const clients of String(opts.clients).split(',').map(Number)) {
    const before = await healthz(url);
    const deadline = performance.now() + Number(opts.seconds) * 1000;
    const max = Number(opts.maxRequests);
    let sent = 0;
    let ok = 0;
    let okInWindow = 0;
    let busy = 0;
    let other = 0;
    const latencies: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        let i = c;
        while (performance.now() < deadline && sent < max) {
          sent++;
          const body = bodies[i++ % bodies.length]!;
          const t = performance.now();
          try {
            const res = await fetch(`${url}/v1/segment`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
            await res.arrayBuffer();
            if (res.status === 200) {
              ok++;
              const done = performance.now();
              if (done <= deadline) okInWindow++;
              latencies.push(done - t);
            } else if (res.status === 503) {
              busy++;
              await sleep(Number(opts.busyWaitMs));
            } else other++;
          } catch {
            other++;
          }
        }
      }),
    );
    // throughput over the timed window only: the requests still held at its end finish afterwards (the drain)
    const window = (Math.min(performance.now(), deadline) - t0) / 1000;
    const after = await healthz(url);
    latencies.sort((a, b) => a - b);
    const batches = after.batches.count - before.batches.count;
    const images = after.batches.images - before.batches.images;
    console.log(
      [
        String(clients).padStart(7),
        String(sent).padStart(9),
        String(ok).padStart(6),
        String(busy).padStart(6),
        String(other).padStart(6),
        (okInWindow / window).toFixed(1).padStart(10),
        pct(latencies, 50).toFixed(1).padStart(8),
        pct(latencies, 95).toFixed(1).padStart(8),
        pct(latencies, 99).toFixed(1).padStart(8),
        (batches ? images / batches : 0).toFixed(2).padStart(11),
      ].join(' '),
    );
  }
  const end = await healthz(url);
  console.log(`after the run: /healthz ok, ${end.queue.in_flight} requests in flight`);
} finally {
  const code = await stopServer();
  console.log(`server stopped (exit ${code})`);
}
