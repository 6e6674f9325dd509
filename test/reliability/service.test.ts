// The HTTP service as deployed (`mobileutr serve` in a child process on 127.0.0.1): overload is shed with 503 and
// memory stays bounded, slow and stalled clients and malformed multipart bodies do not stall other requests,
// bombs are refused from their header, and the service recovers. The soak driver is bench/soak.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSoak, runSoak } from '../../bench/soak.ts';
import { UserError } from '../../src/errors.ts';
import { createModel } from '../../src/models/model.ts';
import { buildServer } from '../../src/server/app.ts';
import { jpegBomb, pngBomb, tiffBomb, webpBomb } from '../support/png.ts';
import { BIN } from '../support/bin.ts';
import { diskPng, sleep } from './support.ts';

const TIMEOUT_MS = 2000;
const CAPACITY = 1 * 2 + 2; // --concurrency 1 --max-batch 2 --queue 2

let child: ChildProcess;
let url: string;
let port: number;

function peakRssMb(): number {
  const s = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(s)![1]) / 1024;
}

async function post(body: Uint8Array | string, type: string, headers: Record<string, string> = {}) {
  const t = performance.now();
  const res = await fetch(`${url}/v1/segment`, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers: { 'content-type': type, ...headers } });
  const text = await res.text();
  return { status: res.status, ms: performance.now() - t, error: res.headers.get('content-type')?.includes('json') ? (JSON.parse(text).error as string | undefined) : undefined };
}

async function health() {
  return (await fetch(`${url}/healthz`)).json() as Promise<{ status: string; queue: { in_flight: number }; requests: Record<string, number>; memory: { rss_mb: number } }>;
}

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v) || performance.now() > end) return v;
    await sleep(50);
  }
}

/** A raw connection that sends `data` and then nothing: resolves with what the server answered when it closes. */
function stalled(data: string | Uint8Array): { socket: Socket; answer: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.on('data', (d) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  const answer = new Promise<string>((r) => socket.on('close', () => r(text)));
  socket.write(data);
  return { socket, answer };
}

beforeAll(async () => {
  child = spawn(
    process.execPath,
    [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--size', '32', '--concurrency', '1', '--max-batch', '2', '--queue', '2', '--timeout-ms', String(TIMEOUT_MS), '--max-upload-mb', '1', '--max-pixels', '1000000'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  url = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening at (http:\/\/127\.0\.0\.1:(\d+))/.exec(out);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
  port = Number(new URL(url).port);
});

afterAll(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
});

describe('the service under hostile clients', () => {
  it('decompression bombs (PNG, JPEG, WebP, TIFF) get 422 from their header, at once, with no memory spike', async () => {
    const png = await diskPng(64, 48);
    expect((await post(png, 'image/png')).status).toBe(200);
    const before = peakRssMb();
    const bombs: [string, Uint8Array][] = [
      ['PNG 100000x100000', pngBomb(100_000, 100_000)],
      ['PNG 20000x20000', pngBomb(20_000, 20_000)],
      ['JPEG 65000x65000', await jpegBomb(65_000, 65_000)],
      ['WebP 16383x16383', await webpBomb()],
      ['TIFF 65535x65535', await tiffBomb(65_535, 65_535)],
    ];
    for (const [name, bytes] of bombs) {
      const r = await post(bytes, 'application/octet-stream');
      expect(r.status, name).toBe(422);
      expect(r.error, name).toMatch(/pixels; this server accepts at most 1,000,000 pixels/);
      expect(r.ms, name).toBeLessThan(1000);
    }
    expect(peakRssMb() - before).toBeLessThan(50);
    expect((await post(png, 'image/png')).status).toBe(200);
  });

  it('malformed multipart bodies get a 4xx quickly while good requests keep being answered', async () => {
    const png = await diskPng(50, 40);
    const part = (name: string, body: string, extra = '') => `--b\r\nContent-Disposition: form-data; name="${name}"; filename="a.png"${extra}\r\nContent-Type: image/png\r\n\r\n${body}\r\n`;
    const mp = 'multipart/form-data; boundary=b';
    const cases: [string, string, string, number | RegExp][] = [
      ['no closing boundary', part('image', '\x89PNG'), mp, 400],
      ['boundary never appears', '--zzz\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc\r\n--zzz--\r\n', mp, 400],
      ['part without a blank line after its headers', '--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n--b--\r\n', mp, 400],
      ['25 parts', `${Array.from({ length: 25 }, (_, i) => `--b\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nv\r\n`).join('')}--b--\r\n`, mp, /^4\d\d$/],
      ['a 200 KB part header', `--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nX-Junk: ${'j'.repeat(200_000)}\r\n\r\nabc\r\n--b--\r\n`, mp, /^4\d\d$/],
      ['a 100 KB text field', `--b\r\nContent-Disposition: form-data; name="note"\r\n\r\n${'n'.repeat(100_000)}\r\n${part('image', '\x89PNG')}--b--\r\n`, mp, /^4\d\d$/],
      ['an empty image file', `${part('image', '')}--b--\r\n`, mp, 400],
      ['the file in another field', `${part('upload', 'abc')}--b--\r\n`, mp, 400],
      ['a nested multipart/mixed part', `--b\r\nContent-Disposition: form-data; name="image"\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n--b--\r\n`, mp, /^4\d\d$/],
      ['a 300-character boundary', `--${'q'.repeat(300)}\r\n${part('image', 'abc').slice(5)}--${'q'.repeat(300)}--\r\n`, `multipart/form-data; boundary=${'q'.repeat(300)}`, /^4\d\d$/],
      ['multipart/mixed as the request type', `${part('image', 'abc')}--b--\r\n`, 'multipart/mixed; boundary=b', 415],
      ['no boundary parameter', 'whatever', 'multipart/form-data', 400],
    ];
    // good requests one after another in the background, bad ones two at a time: at most 3 of the 4 slots in use
    let stop = false;
    const good: number[] = [];
    const background = (async () => {
      while (!stop) good.push((await post(png, 'image/png')).status);
    })();
    const bad: Awaited<ReturnType<typeof post>>[] = [];
    for (let i = 0; i < cases.length; i += 2) bad.push(...(await Promise.all(cases.slice(i, i + 2).map(([, body, type]) => post(body, type)))));
    stop = true;
    await background;
    bad.forEach((r, i) => {
      const [name, , , want] = cases[i]!;
      if (typeof want === 'number') expect(r.status, name).toBe(want);
      else expect(String(r.status), name).toMatch(want);
      expect(r.ms, name).toBeLessThan(1500);
      expect(r.error, name).toBeTruthy();
      expect(r.error, name).not.toMatch(/\n\s+at |node_modules/);
    });
    expect(good.length).toBeGreaterThan(0);
    expect(good.every((status) => status === 200), String(good)).toBe(true);
    const h = await until(health, (x) => x.queue.in_flight === 0, 2000);
    expect(h.queue.in_flight).toBe(0);
    expect(h.requests.server_errors).toBe(0);
  });

  it('clients that stall mid-upload hold a slot only until the timeout; others are answered meanwhile', async () => {
    const png = await diskPng(40, 40);
    const head = (length: number) => `POST /v1/segment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: ${length}\r\n\r\n`;
    // fewer stalled clients than slots: good requests go through at normal speed
    const few = Array.from({ length: CAPACITY - 2 }, () => stalled(head(png.length + 500) + png.toString('latin1')));
    const multi = stalled(`POST /v1/segment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000\r\n\r\n--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n\x89PNG`);
    await until(health, (h) => h.queue.in_flight >= CAPACITY - 1, 1000);
    const t = performance.now();
    const r = await post(png, 'image/png');
    expect(r.status).toBe(200);
    expect(performance.now() - t).toBeLessThan(1000);
    // they are answered 408 at the timeout and their slots come back
    for (const s of [...few, multi]) expect(await s.answer).toMatch(/^HTTP\/1\.1 408 /);
    let h = await until(health, (x) => x.queue.in_flight === 0, 1000);
    expect(h.queue.in_flight).toBe(0);

    // more stalled clients than slots: the others are shed with 503 at once (not left waiting), then it recovers
    const many = Array.from({ length: CAPACITY + 2 }, () => stalled(head(png.length + 500) + png.toString('latin1')));
    await until(health, (x) => x.queue.in_flight >= CAPACITY, 1000);
    const shed = await post(png, 'image/png');
    expect(shed.status).toBe(503);
    expect(shed.ms).toBeLessThan(500);
    await Promise.all(many.map((s) => s.answer));
    h = await until(health, (x) => x.queue.in_flight === 0, 1000);
    expect(h).toMatchObject({ status: 'ok', queue: { in_flight: 0 } });
    expect((await post(png, 'image/png')).status).toBe(200);
  });

  it('slowloris headers and idle connections take no slot', async () => {
    const sockets = Array.from({ length: 40 }, (_, i) => stalled(i % 2 ? 'POST /v1/segment HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' : ''));
    await sleep(100);
    const h = await health();
    expect(h.queue.in_flight).toBe(0);
    const png = await diskPng(30, 30);
    const results = await Promise.all(Array.from({ length: CAPACITY }, () => post(png, 'image/png')));
    expect(results.map((r) => r.status)).toEqual(Array(CAPACITY).fill(200));
    for (const s of sockets) s.socket.destroy();
  });
});

describe('the service under overload (soak)', () => {
  it('sheds load with 503, keeps /healthz fast, bounds memory, and recovers', async () => {
    const result = await runSoak({ seconds: 6, clients: 30, size: 32, concurrency: 1, maxBatch: 2, queue: 4, timeoutMs: 2000, rssLimitMb: 1024 });
    console.log(formatSoak(result).join('\n'));
    expect(result.failures).toEqual([]);
    expect(result.byStatus['200']).toBeGreaterThan(20);
    expect(result.byStatus['503']).toBeGreaterThan(20);
    expect(result.byStatus['500']).toBeUndefined();
    for (const kind of ['text', 'truncated', 'bad-multipart', 'oversized-upload', 'png-bomb', 'too-many-pixels']) {
      const answers = Object.keys(result.byKind[kind] ?? {});
      expect(answers.every((s) => /^(4\d\d|503|reset)$/.test(s)), `${kind}: ${answers}`).toBe(true);
    }
    expect(result.healthz.failed).toBe(0);
    expect(result.healthz.p99).toBeLessThan(1000);
    expect(result.rssMb.peak).toBeLessThan(1024);
    expect(result.recovered).toBe(true);
  });
});

describe('configuration', () => {
  it('a model that cannot take images is refused when the server is built', async () => {
    await expect(buildServer({ model: createModel('mobileutr', { size: 32, inChannels: 4 }) })).rejects.toThrow(UserError);
    await expect(buildServer({ model: createModel('mobileutr', { size: 32, inChannels: 2 }) })).rejects.toThrow(/takes 2 input channels/);
  });
});
