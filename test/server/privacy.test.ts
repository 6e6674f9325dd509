// Nothing about a patient is logged or kept (issue 14, parts 4-5): the logs of uploads (at the most verbose level)
// never hold the file name, pixel data, DICOM tags or the API key, and many uploads leave no file in the temp
// directory or the working directory of the service.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SegmentationModel } from '../../src/models/model.ts';
import { ApiKeys } from '../../src/server/auth.ts';
import { ultrasound } from './dicom-writer.ts';
import { diskPng, serveCliWith, start, stopCli, testModel } from './support.ts';

const KEY = 'privacy-key-0123456789abcdef';
/** In file names, patient tags, field names and query strings: must never reach a log line. */
const MARK = 'ZQXDOE';
const NAME = `${MARK}-Jane-1961-02-03-breast-left.png`;

let model: SegmentationModel;
beforeAll(async () => {
  model = await testModel(32);
});

/** A PNG of noise (so that it does not compress: a large upload). */
async function noisePng(width: number, height: number): Promise<Buffer> {
  const px = new Uint8Array(width * height * 3);
  let s = 12345;
  for (let i = 0; i < px.length; i++) px[i] = (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
  return sharp(px, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

function multipart(bytes: Uint8Array, filename: string, field = 'image', type = 'image/png'): FormData {
  const form = new FormData();
  form.append(field, new Blob([new Uint8Array(bytes)], { type }), filename);
  return form;
}

describe('log hygiene', () => {
  it('logs at trace level: JSON lines with request ids; no file name, tag, pixel data or key', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    const srv = await start({ model, concurrency: 1, apiKeys: ApiKeys.fromKeys([KEY]), logger: { level: 'trace', stream } });
    const auth = { authorization: `Bearer ${KEY}` };
    const png = await diskPng(40, 30);
    const dcm = ultrasound(24, 32, { patient: `${MARK}^JANE^^^` }).file;
    const ids: string[] = [];
    const send = async (path: string, init: RequestInit, status: number) => {
      const res = await fetch(`${srv.url}${path}`, init);
      expect(res.status, path).toBe(status);
      const body = await res.text();
      ids.push(res.headers.get('x-request-id')!);
      return body;
    };
    try {
      const json = { ...auth, accept: 'application/json' };
      await send('/v1/segment', { method: 'POST', body: multipart(png, NAME), headers: json }, 200);
      await send(`/v1/segment?file=${NAME}&patient=${MARK}`, { method: 'POST', body: multipart(dcm, `${MARK}.dcm`, 'image', 'application/dicom'), headers: json }, 200);
      await send('/v1/segment', { method: 'POST', body: new Uint8Array(dcm), headers: { ...json, 'content-type': 'application/dicom' } }, 200);
      await send('/v1/segment', { method: 'POST', body: multipart(Buffer.from(`not an image ${MARK}`), NAME), headers: json }, 422);
      await send('/v1/segment', { method: 'POST', body: multipart(png, NAME, `${MARK}-field`), headers: json }, 400);
      await send('/v1/segment', { method: 'POST', body: multipart(dcm.subarray(0, dcm.length - 100), NAME, 'image', 'application/dicom'), headers: json }, 400);
      await send('/v1/segment', { method: 'POST', body: multipart(png, NAME), headers: { authorization: `Bearer ${MARK}-not-a-key-0000` } }, 401);
      await send(`/no/${MARK}`, { headers: auth }, 404);
    } finally {
      await srv.close();
    }
    expect(lines.length).toBeGreaterThan(8);
    const log = lines.join('\n');
    expect(log.toUpperCase()).not.toContain(MARK);
    expect(log).not.toContain(KEY);
    expect(log).not.toMatch(/\.dcm|\.png|filename|JANE|mask_png_base64|iVBOR/i); // iVBOR: base64 of a PNG header
    // at trace level @fastify/multipart logs the request's headers: they are redacted
    expect(log).toMatch(/"busboyOptions":\{"headers":"\[redacted\]"/);
    for (const line of lines) {
      const entry = JSON.parse(line) as { reqId?: string; msg?: string };
      expect(line.length).toBeLessThan(2000);
      // the answer line of each request names the route, never the query string
      if (entry.msg?.startsWith('POST ')) expect(entry.msg).toBe('POST /v1/segment');
    }
    const answered = lines.map((l) => JSON.parse(l) as { reqId?: string; msg?: string; status?: number }).filter((e) => e.msg === 'POST /v1/segment');
    expect(answered.map((e) => e.status)).toEqual([200, 200, 200, 422, 400, 400, 401]);
    expect(answered.map((e) => e.reqId)).toEqual(ids.slice(0, 7));
  });
});

/** Every file and folder under `dir`, with size and modification time. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const s = statSync(p);
      out.push(`${p} ${s.isDirectory() ? 'dir' : s.size} ${s.mtimeMs}`);
      if (s.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

describe('nothing kept', () => {
  const root = mkdtempSync(join(tmpdir(), 'mobileutr-nothing-kept-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('80 uploads (multipart and raw, PNG and DICOM, good, bad and too large) leave no file in TMPDIR or the working directory', async () => {
    // the service runs in a child with its own empty TMPDIR (os.tmpdir()) and working directory, so that other
    // processes writing to the machine's temp directory cannot disturb the check
    const tmp = join(root, 'tmp');
    const cwd = join(root, 'cwd');
    mkdirSync(tmp);
    mkdirSync(cwd);
    const keys = join(root, 'keys.txt');
    writeFileSync(keys, `${KEY}\n`, { mode: 0o600 });
    const auth = { authorization: `Bearer ${KEY}` };
    const big = await noisePng(500, 400); // ~600 kB: streamed in many chunks
    expect(big.length).toBeGreaterThan(500_000);
    const tooBig = await noisePng(1000, 800); // over --max-upload-mb 2
    expect(tooBig.length).toBeGreaterThan(2 * 2 ** 20);
    const dcm = ultrasound(120, 160, { patient: `${MARK}^JANE` }).file;
    const kinds: [string, () => RequestInit, number][] = [
      ['multipart png', () => ({ method: 'POST', body: multipart(big, NAME), headers: auth }), 200],
      ['raw png', () => ({ method: 'POST', body: new Uint8Array(big), headers: { ...auth, 'content-type': 'image/png' } }), 200],
      ['multipart dicom', () => ({ method: 'POST', body: multipart(dcm, `${MARK}.dcm`, 'image', 'application/dicom'), headers: { ...auth, accept: 'application/json' } }), 200],
      ['raw dicom', () => ({ method: 'POST', body: new Uint8Array(dcm), headers: { ...auth, 'content-type': 'application/dicom' } }), 200],
      ['multipart too large', () => ({ method: 'POST', body: multipart(tooBig, NAME), headers: auth }), 413],
      ['raw too large', () => ({ method: 'POST', body: new Uint8Array(tooBig), headers: { ...auth, 'content-type': 'image/png' } }), 413],
      ['multipart not an image', () => ({ method: 'POST', body: multipart(Buffer.from('text'), NAME), headers: auth }), 422],
      ['multipart, no key', () => ({ method: 'POST', body: multipart(big, NAME) }), 401],
    ];
    const s = await serveCliWith({ env: { ...process.env, TMPDIR: tmp, TMP: tmp, TEMP: tmp }, cwd }, '--size', '32', '--concurrency', '1', '--max-upload-mb', '2', '--api-keys', keys);
    try {
      // warm-up: every kind once (loaders and caches settle before the check)
      for (const [name, init, status] of kinds) {
        const res = await fetch(`${s.url}/v1/segment`, init());
        expect(res.status, `${name}: ${await res.text()}`).toBe(status);
      }
      const before = { tmp: snapshot(tmp), cwd: snapshot(cwd) };
      expect(before.cwd).toEqual([]);
      const events: string[] = [];
      const watchers = [tmp, cwd].map((dir) => watch(dir, { recursive: true }, (event, file) => events.push(`${dir}: ${event} ${file}`)));
      try {
        for (let round = 0; round < 10; round++)
          await Promise.all(
            kinds.map(async ([name, init, status]) => {
              const res = await fetch(`${s.url}/v1/segment`, init());
              await res.arrayBuffer();
              expect(res.status, name).toBe(status);
            }),
          );
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        for (const w of watchers) w.close();
      }
      expect(events).toEqual([]);
      expect(snapshot(tmp)).toEqual(before.tmp);
      expect(snapshot(cwd)).toEqual([]);
      expect(s.log().toUpperCase()).not.toContain(MARK);
    } finally {
      expect(await stopCli(s)).toBe(0);
    }
  });
});
