// Soak test of the HTTP service: starts `mobileutr serve` as a child process on 127.0.0.1 and drives it above its
// capacity (more clients than concurrency x max-batch + queue) with a mix of good, bad, oversized, slow and aborted
// requests, for a bounded time and request count. Prints requests served, answers by status and by kind, errors by
// kind, latency percentiles, /healthz latency under load, the peak RSS (VmHWM from /proc) of the server and of its
// inference worker processes, and whether it recovered (in-flight back to 0, /healthz ok, good requests answered,
// RSS within the limit). Exits 1 when a check fails.
//
//   npm run bench:soak -- --seconds 20                     # authentication on, with a random key
//   npx tsx bench/soak.ts --seconds 20 --api-key "$(openssl rand -hex 32)"   # that key
//   npx tsx bench/soak.ts --seconds 20 --crash-every 4     # SIGSEGV to an inference worker every 4 s
//
// The command runs with authentication on: the server gets a key file holding the key (--api-keys), every request
// sends it (Authorization: Bearer), and the mix adds requests without a key and with a wrong one (401 expected).
// --no-auth serves without keys. The worker pids come from the server's log ("inference worker N ready (pid P)").
//
// `runSoak` is also used by test/reliability/service.test.ts with smaller numbers.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent, STATUS_CODES } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { pngBomb } from '../test/support/png.ts';

export interface SoakOptions {
  /** Load duration, seconds. */
  seconds: number;
  /** Requests sent at most. */
  maxRequests: number;
  /** Concurrent clients (default: 3 x the server's capacity). */
  clients?: number;
  size: number;
  concurrency: number;
  maxBatch: number;
  queue: number;
  timeoutMs: number;
  maxUploadMb: number;
  maxPixels: number;
  /** Peak and after-run RSS of the server must stay below this. */
  rssLimitMb: number;
  seed: number;
  /** Authentication on: the server accepts this key only, and every request (but the no-key/wrong-key kinds) sends it. */
  apiKey?: string;
  /** SIGSEGV to one inference worker process every this many seconds during the load (their batches get 503). */
  crashEverySeconds?: number;
  /** Progress and the report on stdout. */
  log?: (line: string) => void;
}

export const SOAK_DEFAULTS: SoakOptions = {
  seconds: 20,
  maxRequests: 20_000,
  size: 64,
  concurrency: 1,
  maxBatch: 4,
  queue: 8,
  timeoutMs: 3000,
  maxUploadMb: 1,
  maxPixels: 1_000_000,
  rssLimitMb: 1024,
  seed: 1,
};

type Kind =
  | 'good-png'
  | 'good-jpeg'
  | 'good-multipart'
  | 'text'
  | 'truncated'
  | 'empty'
  | 'svg'
  | 'wrong-type'
  | 'bad-multipart'
  | 'oversized-upload'
  | 'png-bomb'
  | 'too-many-pixels'
  | 'slow-client'
  | 'stalled-client'
  | 'aborted'
  | 'no-key'
  | 'wrong-key';

/** Weight of each kind in the mix, and the statuses that are right for it (503 is right for any: load shedding). */
const MIX: Record<Kind, { weight: number; expect: number[] }> = {
  'good-png': { weight: 34, expect: [200] },
  'good-jpeg': { weight: 10, expect: [200] },
  'good-multipart': { weight: 10, expect: [200] },
  text: { weight: 4, expect: [422] },
  truncated: { weight: 4, expect: [422] },
  empty: { weight: 2, expect: [400] },
  svg: { weight: 2, expect: [415] },
  'wrong-type': { weight: 2, expect: [415] },
  'bad-multipart': { weight: 5, expect: [400] },
  'oversized-upload': { weight: 5, expect: [413] },
  'png-bomb': { weight: 5, expect: [422] },
  'too-many-pixels': { weight: 4, expect: [422] },
  'slow-client': { weight: 5, expect: [200] },
  'stalled-client': { weight: 2, expect: [408] },
  aborted: { weight: 6, expect: [200] }, // 200 when the answer came before the client left
  // only with --api-key
  'no-key': { weight: 3, expect: [401] },
  'wrong-key': { weight: 3, expect: [401] },
};
const AUTH_KINDS: readonly Kind[] = ['no-key', 'wrong-key'];

export interface SoakResult {
  options: SoakOptions;
  clients: number;
  capacity: number;
  seconds: number;
  sent: number;
  /** Requests that got an HTTP answer. */
  answered: number;
  byStatus: Record<string, number>;
  byKind: Record<string, Record<string, number>>;
  /** Answers other than 200 by what they were: status and name, 503s by their message, connection outcomes. */
  errors: Record<string, number>;
  /** Answers whose status was not right for their kind (503 always counts as right). */
  unexpected: { kind: string; status: string; count: number }[];
  latencyMs: { p50: number; p99: number; max: number };
  okLatencyMs: { p50: number; p99: number };
  healthz: { probes: number; failed: number; p50: number; p99: number; max: number };
  rssMb: { baseline: number; peak: number; sampledMax: number; after: number; limit: number };
  /**
   * The inference worker processes: how many ran (replacements included), the largest peak RSS (VmHWM) of one, and
   * the server's peak plus the peaks of the workers alive at the end (the footprint's upper bound), checked against
   * the limit.
   */
  workers: { processes: number; peakMb: number; totalPeakMb: number };
  workerRestarts: number;
  /** SIGSEGVs sent to workers (--crash-every). */
  crashes: number;
  /** 5xx answers other than 503 (load shedding and timeouts). */
  unexpected5xx: number;
  /** Whether the server required the API key. */
  auth: boolean;
  recovered: boolean;
  recoveryMs: number;
  failures: string[];
  ok: boolean;
}

const HOST = '127.0.0.1';
const BIN = fileURLToPath(new URL('../bin/mobileutr.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0);
const round = (x: number) => Math.round(x * 10) / 10;

/** Mulberry32: the mix is the same for a seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function scan(width: number, height: number, format: 'png' | 'jpeg'): Promise<Buffer> {
  const px = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const inside = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (Math.min(width, height) / 3) ** 2;
      const v = inside ? 200 : (x * 7 + y * 3) & 127;
      px.set([v, v, v], (y * width + x) * 3);
    }
  const s = sharp(px, { raw: { width, height, channels: 3 } });
  return format === 'png' ? s.png().toBuffer() : s.jpeg().toBuffer();
}

interface Bodies {
  png: Buffer[];
  jpeg: Buffer[];
  truncated: Buffer;
  oversized: Buffer;
  bomb: Buffer;
  tooManyPixels: Buffer;
}

async function makeBodies(o: SoakOptions): Promise<Bodies> {
  const sizes: [number, number][] = [
    [64, 64],
    [200, 150],
    [320, 240],
    [500, 400],
  ];
  const png = await Promise.all(sizes.map(([w, h]) => scan(w, h, 'png')));
  const jpeg = await Promise.all(sizes.map(([w, h]) => scan(w, h, 'jpeg')));
  const side = Math.ceil(Math.sqrt(o.maxPixels)) + 16;
  const tooManyPixels = await sharp({ create: { width: side, height: side, channels: 3, background: '#203040' } }).png().toBuffer();
  return {
    png,
    jpeg,
    truncated: png[2]!.subarray(0, Math.floor(png[2]!.length / 2)),
    oversized: Buffer.alloc(Math.round(o.maxUploadMb * 2 ** 20) + 64 * 1024, 7),
    bomb: pngBomb(100_000, 100_000),
    tooManyPixels,
  };
}

interface Answer {
  status: string;
  ms: number;
  /** A 503's JSON error message (which kind of 503 it was). */
  error?: string;
}

const agent = new Agent({ keepAlive: false, maxSockets: Infinity });

/** One HTTP request with node:http; resolves with the status, or the kind of connection failure. */
function httpRequest(url: string, method: string, path: string, headers: Record<string, string>, body: Uint8Array | string | undefined, timeoutMs: number): Promise<Answer & { body: string }> {
  return new Promise((resolve) => {
    const t = performance.now();
    const u = new URL(url);
    let settled = false;
    const done = (status: string, body = '') => {
      if (settled) return;
      settled = true;
      resolve({ status, ms: performance.now() - t, body, ...(status === '503' ? { error: errorOf(body) } : {}) });
    };
    const req = request({ host: u.hostname, port: u.port, method, path, headers, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done(String(res.statusCode), Buffer.concat(chunks).toString('utf8')));
      res.on('error', () => done(String(res.statusCode)));
    });
    req.on('timeout', () => {
      req.destroy();
      done('client-timeout');
    });
    req.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'reset' : `error ${e.code ?? e.message}`));
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/** Raw socket requests: slow, stalled and aborted clients. Resolves with the status line's code, or what happened. */
function rawRequest(url: string, head: string, first: Buffer, rest: Buffer | undefined, o: { pauseMs: number; abortAfterMs?: number; timeoutMs: number }): Promise<Answer> {
  return new Promise((resolve) => {
    const t = performance.now();
    const u = new URL(url);
    const socket = connect(Number(u.port), u.hostname);
    let answer = '';
    let settled = false;
    const done = (status: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      socket.destroy();
      resolve({ status, ms: performance.now() - t, ...(status === '503' ? { error: errorOf(answer) } : {}) });
    };
    const guard = setTimeout(() => done('client-timeout'), o.timeoutMs);
    socket.on('data', (d) => {
      answer += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      // (a 503: read on to its message, which says which kind of 503 it is)
      if (m && (m[1] !== '503' || errorOf(answer) !== undefined)) done(m[1]!);
    });
    socket.on('error', () => done('reset'));
    socket.on('close', () => done(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? (answer ? 'garbled' : 'closed')));
    socket.write(head);
    socket.write(first);
    if (o.abortAfterMs !== undefined) setTimeout(() => done('aborted'), o.abortAfterMs);
    else if (rest) setTimeout(() => !settled && socket.write(rest), o.pauseMs);
  });
}

/** The "error" of a JSON answer (or of the raw HTTP text holding one). */
function errorOf(text: string): string | undefined {
  return /"error":"((?:[^"\\]|\\.)*)"/.exec(text)?.[1];
}

/** What kind of error an answer is: its status and name, a 503 by its message, or what happened to the connection. */
function errorKind(a: Answer): string {
  if (!/^\d{3}$/.test(a.status)) return a.status === 'aborted' ? 'client went away (aborted)' : `connection: ${a.status}`;
  if (a.status !== '503') return `${a.status} ${STATUS_CODES[Number(a.status)] ?? ''}`.trim();
  const e = a.error ?? '';
  if (/^server busy/.test(e)) return '503 shed (server busy)';
  if (/timed out/.test(e)) return '503 timed out';
  if (/inference worker running this request's batch crashed/.test(e)) return "503 lost with a crashed worker's batch";
  if (/no inference worker/.test(e)) return '503 no inference worker';
  return '503 other';
}

function multipart(body: Buffer, boundary = 'soak-boundary'): { head: Record<string, string>; body: Buffer } {
  const pre = `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="scan.png"\r\nContent-Type: image/png\r\n\r\n`;
  return {
    head: { 'content-type': `multipart/form-data; boundary=${boundary}`, accept: 'application/json' },
    body: Buffer.concat([Buffer.from(pre), body, Buffer.from(`\r\n--${boundary}--\r\n`)]),
  };
}

async function send(kind: Kind, url: string, b: Bodies, pick: () => number, o: SoakOptions): Promise<Answer> {
  const limit = o.timeoutMs + 5000;
  const key: Record<string, string> = o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {};
  const keyLine = o.apiKey ? `Authorization: Bearer ${o.apiKey}\r\n` : '';
  const raw = (body: Uint8Array | string, type = 'image/png') => httpRequest(url, 'POST', '/v1/segment', { 'content-type': type, ...key }, body, limit);
  const any = <T>(list: T[]) => list[Math.floor(pick() * list.length)]!;
  switch (kind) {
    case 'good-png':
      return raw(any(b.png));
    case 'good-jpeg':
      return raw(any(b.jpeg), 'application/octet-stream');
    case 'good-multipart': {
      const m = multipart(any(b.png));
      return httpRequest(url, 'POST', '/v1/segment', { ...m.head, ...key }, m.body, limit);
    }
    case 'no-key':
      return httpRequest(url, 'POST', '/v1/segment', { 'content-type': 'image/png' }, b.png[0]!, limit);
    case 'wrong-key':
      return httpRequest(url, 'POST', '/v1/segment', { 'content-type': 'image/png', authorization: `Bearer wrong-${o.apiKey ?? ''}` }, b.png[0]!, limit);
    case 'text':
      return raw('not an image, just text\n');
    case 'truncated':
      return raw(b.truncated);
    case 'empty':
      return raw(new Uint8Array(0));
    case 'svg':
      return raw('<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"><rect width="10" height="10"/></svg>');
    case 'wrong-type':
      return raw(any(b.png), 'text/plain');
    case 'bad-multipart': {
      const variants = [
        // no closing boundary, part cut inside the PNG
        `--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n\x89PNG\r\n`,
        // boundary that never appears
        `--zzz\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc\r\n--zzz--\r\n`,
        // a part header without a blank line
        `--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n--b--\r\n`,
      ];
      return raw(any(variants), 'multipart/form-data; boundary=b');
    }
    case 'oversized-upload':
      return raw(b.oversized, 'application/octet-stream');
    case 'png-bomb':
      return raw(b.bomb);
    case 'too-many-pixels':
      return raw(b.tooManyPixels);
    case 'slow-client': {
      // the body arrives in two halves 300 ms apart: slow but within the timeout
      const body = any(b.png);
      const half = Math.floor(body.length / 2);
      const head = `POST /v1/segment HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: image/png\r\n${keyLine}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
      return rawRequest(url, head, body.subarray(0, half), body.subarray(half), { pauseMs: 300, timeoutMs: limit });
    }
    case 'stalled-client': {
      // announces a body it never finishes: the server must give up at its timeout (408) and free the slot
      const body = any(b.png);
      const head = `POST /v1/segment HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: image/png\r\n${keyLine}Content-Length: ${body.length + 1000}\r\n\r\n`;
      return rawRequest(url, head, body, undefined, { pauseMs: 0, timeoutMs: limit });
    }
    case 'aborted': {
      // goes away mid-upload or while its image waits for the model
      const body = any(b.png);
      const head = `POST /v1/segment HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: image/png\r\n${keyLine}Content-Length: ${body.length}\r\n\r\n`;
      const full = pick() < 0.5;
      return rawRequest(url, head, full ? body : body.subarray(0, 100), undefined, { pauseMs: 0, abortAfterMs: full ? 20 : 50, timeoutMs: limit });
    }
  }
}

function procStatus(pid: number): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

interface Health {
  status: string;
  queue: { in_flight: number; capacity: number };
  workers: { alive: number; restarts: number };
  memory: { rss_mb: number };
}

async function health(url: string, timeoutMs = 2000): Promise<{ ms: number; status: string; body?: Health }> {
  const r = await httpRequest(url, 'GET', '/healthz', {}, undefined, timeoutMs);
  let body: Health | undefined;
  try {
    body = JSON.parse(r.body) as Health;
  } catch {
    body = undefined;
  }
  return { ms: r.ms, status: r.status, body };
}

/** Starts `mobileutr serve` on 127.0.0.1 (a free port) and resolves once it listens. */
async function startServer(o: SoakOptions): Promise<{ child: ChildProcess; url: string; exit: Promise<number | null>; workers: WorkerPids }> {
  let keyFile: string | undefined;
  if (o.apiKey) {
    const dir = mkdtempSync(join(tmpdir(), 'mobileutr-soak-'));
    keyFile = join(dir, 'keys.txt');
    writeFileSync(keyFile, `# bench/soak.ts\n${o.apiKey}\n`, { mode: 0o600 });
  }
  const args = [
    BIN,
    'serve',
    ...['--host', HOST, '--port', '0', '--size', String(o.size), '--concurrency', String(o.concurrency), '--max-batch', String(o.maxBatch)],
    ...['--queue', String(o.queue), '--timeout-ms', String(o.timeoutMs), '--max-upload-mb', String(o.maxUploadMb), '--max-pixels', String(o.maxPixels)],
    ...['--threads', '1', '--log-level', 'info'],
    ...(keyFile ? ['--api-keys', keyFile] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  if (keyFile) void exit.then(() => rmSync(join(keyFile, '..'), { recursive: true, force: true }));
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen within 60 s:\n${out.slice(-2000)}`)), 60_000);
    const onData = (d: Buffer) => {
      if (out.length < 1e6) out += d.toString();
      const m = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exit.then((code) => reject(new Error(`server exited with ${code} before listening:\n${out.slice(-2000)}`)));
  });
  // keep draining its log so the pipe never fills, following the inference workers' pids
  const workers: WorkerPids = { alive: new Set(), seen: new Set() };
  const follow = (text: string) => {
    for (const m of text.matchAll(/inference worker \d+ ready \(pid (\d+)\)/g)) {
      workers.alive.add(Number(m[1]));
      workers.seen.add(Number(m[1]));
    }
    for (const m of text.matchAll(/inference worker \d+ \(pid (\d+)\) died/g)) workers.alive.delete(Number(m[1]));
  };
  follow(out);
  let tail = '';
  child.stdout!.removeAllListeners('data');
  child.stderr!.removeAllListeners('data');
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (tail + d.toString()).split('\n');
    tail = lines.pop()!.slice(-4096);
    follow(lines.join('\n'));
  });
  child.stderr!.resume();
  return { child, url, exit, workers };
}

interface WorkerPids {
  alive: Set<number>;
  seen: Set<number>;
}

export async function runSoak(options: Partial<SoakOptions> = {}): Promise<SoakResult> {
  const o: SoakOptions = { ...SOAK_DEFAULTS, ...options };
  const log = o.log ?? (() => {});
  const capacity = o.concurrency * o.maxBatch + o.queue;
  const clients = o.clients ?? 3 * capacity;
  const bodies = await makeBodies(o);
  const server = await startServer(o);
  const pid = server.child.pid!;
  const keyHeader: Record<string, string> = o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {};
  const failures: string[] = [];
  try {
    // warm-up: each good image once
    for (const png of bodies.png) await httpRequest(server.url, 'POST', '/v1/segment', { 'content-type': 'image/png', ...keyHeader }, png, 30_000);
    const baseline = procStatus(pid).rss;
    // peak RSS of each worker process, sampled (a dead worker's VmHWM goes with it)
    const workerPeak = new Map<number, number>();
    const sampleWorkers = () => {
      for (const w of server.workers.alive) {
        const hwm = procStatus(w).hwm;
        if (Number.isFinite(hwm)) workerPeak.set(w, Math.max(workerPeak.get(w) ?? 0, hwm));
      }
    };
    sampleWorkers();
    log(`server pid ${pid} at ${server.url}: capacity ${capacity} (concurrency ${o.concurrency} x max-batch ${o.maxBatch} + queue ${o.queue}), baseline RSS ${round(baseline)} MB`);
    const kinds = (Object.entries(MIX) as [Kind, (typeof MIX)[Kind]][]).filter(([k]) => o.apiKey || !AUTH_KINDS.includes(k));
    log(
      `load: ${clients} clients for ${o.seconds} s or ${o.maxRequests} requests, mix of ${kinds.length} kinds (seed ${o.seed})${o.apiKey ? '; authentication on (--api-keys, one key)' : '; authentication OFF'}` +
        `${o.crashEverySeconds ? `; SIGSEGV to an inference worker every ${o.crashEverySeconds} s` : ''}; inference worker pids ${[...server.workers.alive].join(', ')}`,
    );

    const random = rng(o.seed);
    const totalWeight = kinds.reduce((n, [, m]) => n + m.weight, 0);
    const pickKind = (): Kind => {
      let x = random() * totalWeight;
      for (const [k, m] of kinds) if ((x -= m.weight) < 0) return k;
      return 'good-png';
    };

    const byKind: Record<string, Record<string, number>> = {};
    const byStatus: Record<string, number> = {};
    const errors: Record<string, number> = {};
    const latencies: number[] = [];
    const okLatencies: number[] = [];
    let sent = 0;
    let answered = 0;
    let loadDone = false;

    // health probes and RSS samples during the load
    const probes: number[] = [];
    let probeFailed = 0;
    let sampledMax = 0;
    let crashes = 0;
    const prober = (async () => {
      while (!loadDone) {
        const h = await health(server.url);
        if (h.status === '200' && h.body) {
          probes.push(h.ms);
          sampledMax = Math.max(sampledMax, h.body.memory.rss_mb);
        } else if (!(crashes > 0 && h.status === '503' && h.body?.workers.alive === 0)) probeFailed++; // (503 while a killed worker restarts is right)
        sampleWorkers();
        await sleep(100);
      }
    })();
    // crash injection: SIGSEGV to one worker (in turn) every crashEverySeconds
    const crasher = (async () => {
      if (!o.crashEverySeconds) return;
      for (;;) {
        const end = performance.now() + o.crashEverySeconds * 1000;
        while (!loadDone && performance.now() < end) await sleep(50);
        if (loadDone) return;
        const alive = [...server.workers.alive];
        const victim = alive[crashes % Math.max(1, alive.length)];
        if (victim === undefined) continue;
        try {
          process.kill(victim, 'SIGSEGV');
          crashes++;
          log(`  SIGSEGV to inference worker pid ${victim}`);
        } catch {
          // it died already
        }
      }
    })();

    const t0 = performance.now();
    const deadline = t0 + o.seconds * 1000;
    let lastReport = t0;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < deadline && sent < o.maxRequests) {
          sent++;
          const kind = pickKind();
          const a = await send(kind, server.url, bodies, random, o);
          (byKind[kind] ??= {})[a.status] = (byKind[kind]![a.status] ?? 0) + 1;
          byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
          if (a.status !== '200') errors[errorKind(a)] = (errors[errorKind(a)] ?? 0) + 1;
          if (/^\d{3}$/.test(a.status)) {
            answered++;
            latencies.push(a.ms);
            if (a.status === '200') okLatencies.push(a.ms);
          }
          if (a.status === '503') await sleep(20 + random() * 80); // a polite client backs off a little
          const now = performance.now();
          if (now - lastReport > 5000) {
            lastReport = now;
            log(`  ${((now - t0) / 1000).toFixed(0)} s: ${sent} sent, ${byStatus['200'] ?? 0} ok, ${byStatus['503'] ?? 0} shed (503), RSS ${round(procStatus(pid).rss)} MB`);
          }
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    loadDone = true;
    await prober;
    await crasher;

    // recovery: in-flight back to 0, healthz ok, good requests answered, memory within the limit
    const r0 = performance.now();
    let recovered = false;
    let last: Health | undefined;
    while (performance.now() - r0 < o.timeoutMs + 10_000) {
      const h = await health(server.url);
      last = h.body;
      if (h.status === '200' && h.body?.queue.in_flight === 0) {
        recovered = true;
        break;
      }
      await sleep(100);
    }
    if (!recovered) failures.push(`did not recover: /healthz ${JSON.stringify(last)}`);
    const recoveryMs = performance.now() - r0;
    for (const png of bodies.png) {
      const a = await httpRequest(server.url, 'POST', '/v1/segment', { 'content-type': 'image/png', ...keyHeader }, png, 30_000);
      if (a.status !== '200') {
        recovered = false;
        failures.push(`good request after the load got ${a.status}`);
      }
    }
    await sleep(500);
    const after = procStatus(pid);
    sampleWorkers();
    const final = await health(server.url);
    const workersPeak = Math.max(0, ...workerPeak.values());
    const totalPeak = after.hwm + [...server.workers.alive].reduce((n, w) => n + (workerPeak.get(w) ?? 0), 0);

    const unexpected: SoakResult['unexpected'] = [];
    for (const [kind, statuses] of Object.entries(byKind))
      for (const [status, count] of Object.entries(statuses)) {
        const expect = MIX[kind as Kind].expect;
        const fine = status === '503' || expect.includes(Number(status)) || (kind === 'aborted' && status === 'aborted');
        // a client sending more than the limit may see its connection closed before it reads the 413 (or a 401)
        const raced = (kind === 'oversized-upload' || AUTH_KINDS.includes(kind as Kind)) && status === 'reset';
        if (!fine && !raced) unexpected.push({ kind, status, count });
      }
    if (unexpected.length) failures.push(`unexpected answers: ${unexpected.map((u) => `${u.kind} ${u.status} x${u.count}`).join(', ')}`);
    if ((byStatus['500'] ?? 0) > 0) failures.push(`${byStatus['500']} internal errors (500)`);
    const other5xx = Object.entries(byStatus).filter(([s]) => /^5\d\d$/.test(s) && s !== '500' && s !== '503');
    if (other5xx.length) failures.push(`unexpected 5xx answers: ${other5xx.map(([s, n]) => `${s} x${n}`).join(', ')}`);
    if (!byStatus['503']) failures.push('no request was shed with 503: the load did not exceed the capacity');
    if (!byStatus['200']) failures.push('no request succeeded');
    const restarts = final.body?.workers.restarts ?? -1;
    if (restarts < crashes) failures.push(`${crashes} workers crashed but ${restarts} were restarted`);
    if (probeFailed > 0) failures.push(`${probeFailed} /healthz probes failed during the load`);
    if (totalPeak > o.rssLimitMb) failures.push(`peak RSS of the server and its workers ${round(totalPeak)} MB over the ${o.rssLimitMb} MB limit`);
    if (after.rss > o.rssLimitMb) failures.push(`RSS after the load ${round(after.rss)} MB over the ${o.rssLimitMb} MB limit`);
    if (server.child.exitCode !== null) failures.push(`server exited with ${server.child.exitCode}`);

    latencies.sort((a, b) => a - b);
    okLatencies.sort((a, b) => a - b);
    probes.sort((a, b) => a - b);
    return {
      options: o,
      clients,
      capacity,
      seconds: round(seconds),
      sent,
      answered,
      byStatus,
      byKind,
      errors,
      unexpected,
      latencyMs: { p50: round(pct(latencies, 50)), p99: round(pct(latencies, 99)), max: round(latencies.at(-1) ?? 0) },
      okLatencyMs: { p50: round(pct(okLatencies, 50)), p99: round(pct(okLatencies, 99)) },
      healthz: { probes: probes.length, failed: probeFailed, p50: round(pct(probes, 50)), p99: round(pct(probes, 99)), max: round(probes.at(-1) ?? 0) },
      rssMb: { baseline: round(baseline), peak: round(after.hwm), sampledMax, after: round(after.rss), limit: o.rssLimitMb },
      workers: { processes: server.workers.seen.size, peakMb: round(workersPeak), totalPeakMb: round(totalPeak) },
      workerRestarts: restarts,
      crashes,
      unexpected5xx: Object.entries(byStatus).filter(([s]) => /^5\d\d$/.test(s) && s !== '503').reduce((n, [, c]) => n + c, 0),
      auth: !!o.apiKey,
      recovered,
      recoveryMs: round(recoveryMs),
      failures,
      ok: failures.length === 0,
    };
  } finally {
    const t = performance.now();
    if (server.child.exitCode === null) server.child.kill('SIGTERM');
    const code = await Promise.race([server.exit, sleep(o.timeoutMs + 10_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      server.child.kill('SIGKILL');
      log(`server did not stop within ${o.timeoutMs + 10_000} ms of SIGTERM: killed`);
    } else log(`server stopped (exit ${code}) ${Math.round(performance.now() - t)} ms after SIGTERM`);
  }
}

export function formatSoak(r: SoakResult): string[] {
  const lines: string[] = [];
  const statuses = Object.entries(r.byStatus).sort(([a], [b]) => a.localeCompare(b));
  lines.push(`requests: ${r.sent} sent in ${r.seconds} s by ${r.clients} clients (server capacity ${r.capacity}); ${r.answered} answered, ${r.byStatus['200'] ?? 0} served (200)`);
  lines.push(`by status: ${statuses.map(([s, n]) => `${s} ${n}`).join(', ')}`);
  lines.push('by kind:');
  for (const [kind, s] of Object.entries(r.byKind).sort(([a], [b]) => a.localeCompare(b)))
    lines.push(`  ${kind.padEnd(17)} ${Object.entries(s).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  lines.push(`latency (all answers): p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms; 200s: p50 ${r.okLatencyMs.p50} ms, p99 ${r.okLatencyMs.p99} ms`);
  lines.push(`/healthz under load: ${r.healthz.probes} probes, ${r.healthz.failed} failed, p50 ${r.healthz.p50} ms, p99 ${r.healthz.p99} ms, max ${r.healthz.max} ms`);
  const errors = Object.entries(r.errors).sort(([a], [b]) => a.localeCompare(b));
  lines.push(`errors by kind: ${errors.length ? errors.map(([kind, n]) => `${kind} ${n}`).join(', ') : 'none'}`);
  lines.push(`server RSS: baseline ${r.rssMb.baseline} MB, peak ${r.rssMb.peak} MB (VmHWM; /healthz max ${r.rssMb.sampledMax} MB), after ${r.rssMb.after} MB`);
  lines.push(
    `inference worker processes: ${r.workers.processes} ran, peak ${r.workers.peakMb} MB each at most (VmHWM); peak RSS of the server and its workers ${r.workers.totalPeakMb} MB, limit ${r.rssMb.limit} MB`,
  );
  lines.push(`worker restarts: ${r.workerRestarts}${r.crashes ? ` (${r.crashes} SIGSEGV sent)` : ''}`);
  lines.push(`unexpected 5xx (other than 503): ${r.unexpected5xx}${r.auth ? `; authentication on: 401 to no-key ${r.byKind['no-key']?.['401'] ?? 0}, wrong-key ${r.byKind['wrong-key']?.['401'] ?? 0}` : ''}`);
  lines.push(`recovered: ${r.recovered ? 'yes' : 'NO'} (in-flight 0 and /healthz ok ${r.recoveryMs} ms after the load; good requests answered 200)`);
  lines.push(r.ok ? 'soak: PASS' : `soak: FAIL: ${r.failures.join('; ')}`);
  return lines;
}

async function main(): Promise<void> {
  const { Command } = await import('commander');
  const num = (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`not a positive number: ${v}`);
    return n;
  };
  const cmd = new Command('soak')
    .description('soak test of `mobileutr serve` on 127.0.0.1: overload with good, bad, oversized, slow and aborted requests, then check recovery')
    .option('--seconds <n>', 'load duration', num, SOAK_DEFAULTS.seconds)
    .option('--max-requests <n>', 'requests sent at most', num, SOAK_DEFAULTS.maxRequests)
    .option('--clients <n>', 'concurrent clients (default: 3 x capacity)', num)
    .option('--size <n>', 'model input size', num, SOAK_DEFAULTS.size)
    .option('--concurrency <n>', 'server inference workers', num, SOAK_DEFAULTS.concurrency)
    .option('--max-batch <n>', 'server max batch', num, SOAK_DEFAULTS.maxBatch)
    .option('--queue <n>', 'server queue', num, SOAK_DEFAULTS.queue)
    .option('--timeout-ms <n>', 'server request timeout', num, SOAK_DEFAULTS.timeoutMs)
    .option('--max-upload-mb <n>', 'server upload limit', num, SOAK_DEFAULTS.maxUploadMb)
    .option('--max-pixels <n>', 'server pixel limit', num, SOAK_DEFAULTS.maxPixels)
    .option('--rss-limit-mb <n>', 'peak and after-run RSS must stay below', num, SOAK_DEFAULTS.rssLimitMb)
    .option('--seed <n>', 'seed of the request mix', num, SOAK_DEFAULTS.seed)
    .option('--api-key <key>', 'the API key: the server gets --api-keys holding it, every request sends it, and no-key/wrong-key requests (401) join the mix (default: a random key)')
    .option('--no-auth', 'serve without API keys (no 401 kinds in the mix)')
    .option('--crash-every <seconds>', 'SIGSEGV to an inference worker process every this many seconds during the load', num)
    .option('--json', 'print the result as JSON too')
    .parse();
  const opts = cmd.opts<Partial<SoakOptions> & { json?: boolean; auth: boolean; crashEvery?: number }>();
  if (opts.apiKey && !opts.auth) throw new Error('--api-key and --no-auth contradict each other');
  const { auth, crashEvery, ...rest } = opts;
  const apiKey = auth ? (opts.apiKey ?? randomBytes(32).toString('hex')) : undefined;
  const result = await runSoak({ ...rest, apiKey, crashEverySeconds: crashEvery, log: (l) => console.log(l) });
  for (const line of formatSoak(result)) console.log(line);
  if (opts.json) console.log(JSON.stringify(result));
  process.exitCode = result.ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: Error) => {
    console.error(`soak: ${e.message}`);
    process.exitCode = 1;
  });
}
