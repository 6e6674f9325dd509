// API keys (issue 14, part 1) in the service itself: 401 without a key or with a wrong one, the key's requests
// served, /healthz open, /metrics behind the key unless opened, per-key rate limits with 429 + Retry-After.
// The CLI side (the key file, SIGHUP, the loopback rule) is in security-cli.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import type { SegmentationModel } from '../../src/models/model.ts';
import { ApiKeys, isLoopback, parseApiKeys } from '../../src/server/auth.ts';
import { diskPng, postImage, start, testModel, type Running } from './support.ts';

const KEY_A = 'test-key-aaaaaaaaaaaaaaaa-1';
const KEY_B = 'test-key-bbbbbbbbbbbbbbbb-2';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let model: SegmentationModel;
let png: Buffer;

beforeAll(async () => {
  model = await testModel(32);
  png = await diskPng(40, 30);
});

describe('API keys', () => {
  let srv: Running;
  beforeAll(async () => {
    srv = await start({ model, concurrency: 1, apiKeys: ApiKeys.fromKeys([KEY_A, KEY_B]) });
  });
  afterAll(() => srv.close());

  it('no key: 401 with WWW-Authenticate and a JSON error; the body is not read', async () => {
    const res = await postImage(srv.url, png);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="mobileutr"');
    expect(res.json).toEqual({ error: 'missing API key: send the header "Authorization: Bearer <key>"' });
    expect((await fetch(`${srv.url}/v1/model`)).status).toBe(401);
    // another scheme is no key either
    expect((await postImage(srv.url, png, { 'content-type': 'image/png', authorization: `Basic ${Buffer.from(`u:${KEY_A}`).toString('base64')}` })).status).toBe(401);
  });

  it('a wrong key: 401 invalid_token, whatever its length, prefix or case', async () => {
    for (const wrong of ['x', KEY_A.slice(0, -1), `${KEY_A}x`, KEY_A.toUpperCase(), `${KEY_A} ${KEY_B}`]) {
      const res = await postImage(srv.url, png, { 'content-type': 'image/png', ...bearer(wrong) });
      expect(res.status, wrong).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="mobileutr", error="invalid_token"');
      expect(res.json).toEqual({ error: 'unknown API key' });
      expect(res.bytes.toString()).not.toContain(wrong);
    }
  });

  it('a right key (either one; the scheme is case-insensitive): the answer as without authentication', async () => {
    for (const auth of [`Bearer ${KEY_A}`, `bearer ${KEY_B}`]) {
      const res = await postImage(srv.url, png, { 'content-type': 'image/png', authorization: auth });
      expect(res.status).toBe(200);
      expect(res.type).toBe('image/png');
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect((await fetch(`${srv.url}/v1/model`, { headers: bearer(KEY_A) })).status).toBe(200);
  });

  it('/healthz is open; /metrics and unknown paths need a key', async () => {
    expect((await fetch(`${srv.url}/healthz`)).status).toBe(200);
    const metrics = await fetch(`${srv.url}/metrics`);
    expect(metrics.status).toBe(401);
    expect((await fetch(`${srv.url}/metrics`, { headers: bearer(KEY_B) })).status).toBe(200);
    expect((await fetch(`${srv.url}/nowhere`)).status).toBe(401);
    expect((await fetch(`${srv.url}/nowhere`, { headers: bearer(KEY_B) })).status).toBe(404);
  });

  it('health counters and the service go on after the refusals', async () => {
    const h = await (await fetch(`${srv.url}/healthz`)).json();
    expect(h.status).toBe('ok');
    expect(h.queue.in_flight).toBe(0);
  });
});

describe('--metrics-open and rotation in place', () => {
  it('metricsOpen opens /metrics only; keys replaced at run time take effect at once', async () => {
    const keys = ApiKeys.fromKeys([KEY_A]);
    const srv = await start({ model, concurrency: 1, apiKeys: keys, metricsOpen: true });
    try {
      expect((await fetch(`${srv.url}/metrics`)).status).toBe(200);
      expect((await fetch(`${srv.url}/v1/model`)).status).toBe(401);
      expect((await fetch(`${srv.url}/v1/model`, { headers: bearer(KEY_A) })).status).toBe(200);
      keys.replace([KEY_B]);
      expect((await fetch(`${srv.url}/v1/model`, { headers: bearer(KEY_A) })).status).toBe(401);
      expect((await fetch(`${srv.url}/v1/model`, { headers: bearer(KEY_B) })).status).toBe(200);
    } finally {
      await srv.close();
    }
  });
});

describe('rate limits (@fastify/rate-limit, per key)', () => {
  it('the N+1-th request of a key in a minute gets 429 + Retry-After; another key is not affected; /healthz is not counted', async () => {
    const srv = await start({ model, concurrency: 1, apiKeys: ApiKeys.fromKeys([KEY_A, KEY_B]), rateLimitPerMinute: 3 });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await postImage(srv.url, png, { 'content-type': 'image/png', ...bearer(KEY_A) });
        expect(res.status).toBe(200);
        expect(res.headers.get('x-ratelimit-remaining')).toBe(String(2 - i));
      }
      for (let i = 0; i < 5; i++) expect((await fetch(`${srv.url}/healthz`)).status).toBe(200);
      const limited = await postImage(srv.url, png, { 'content-type': 'image/png', ...bearer(KEY_A) });
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(60);
      expect(limited.json.error).toMatch(/^rate limit exceeded: at most 3 requests per minute per API key; retry in /);
      expect((await postImage(srv.url, png, { 'content-type': 'image/png', ...bearer(KEY_B) })).status).toBe(200);
      // an unknown key is refused before it is counted against anything
      expect((await postImage(srv.url, png, { 'content-type': 'image/png', ...bearer('unknown-key-cccccccccc') })).status).toBe(401);
      const h = await (await fetch(`${srv.url}/healthz`)).json();
      expect(h.queue.in_flight).toBe(0);
    } finally {
      await srv.close();
    }
  });

  it('without keys the limit is per client address', async () => {
    const srv = await start({ model, concurrency: 1, rateLimitPerMinute: 1 });
    try {
      expect((await fetch(`${srv.url}/v1/model`)).status).toBe(200);
      expect((await fetch(`${srv.url}/v1/model`)).status).toBe(429);
    } finally {
      await srv.close();
    }
  });
});

describe('key files and addresses', () => {
  it('parseApiKeys: one key per line, comments and blank lines ignored, duplicates once; a bad line is named by number only', () => {
    expect(parseApiKeys('# ops team\n\n  key-one-0123456789abcdef  \r\nkey-two-0123456789abcdef\nkey-one-0123456789abcdef\n', 'k.txt')).toEqual([
      'key-one-0123456789abcdef',
      'key-two-0123456789abcdef',
    ]);
    expect(() => parseApiKeys('# nothing\n\n', 'k.txt')).toThrow(new UserError('k.txt: no API keys in the file (one key per line; blank lines and # comments are ignored)'));
    for (const bad of ['short', 'has a space in the middle of it', 'bad"quote-0123456789abcdef']) {
      let message = '';
      try {
        parseApiKeys(`good-key-0123456789abcdef\n${bad}\n`, 'k.txt');
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/^k\.txt: line 2 is not a usable API key/);
      expect(message).not.toContain(bad);
    }
  });

  it('check compares digests: only the exact key passes', () => {
    const keys = ApiKeys.fromKeys([KEY_A]);
    expect(keys.check(`Bearer ${KEY_A}`)).toMatchObject({ ok: true });
    expect(keys.check(`Bearer ${KEY_A}`)).toEqual(keys.check(`bearer   ${KEY_A}  `));
    const ok = keys.check(`Bearer ${KEY_A}`);
    expect(ok.ok && ok.id).toMatch(/^[0-9a-f]{64}$/);
    expect(ok.ok && ok.id).not.toContain(KEY_A);
    expect(keys.check(undefined)).toEqual({ ok: false, reason: 'missing' });
    expect(keys.check('Bearer')).toEqual({ ok: false, reason: 'missing' });
    expect(keys.check(`Bearer ${KEY_B}`)).toEqual({ ok: false, reason: 'unknown' });
  });

  it('isLoopback', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'example.org', '128.0.0.1', '']) expect(isLoopback(h), h).toBe(false);
  });
});
