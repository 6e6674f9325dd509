// `mobileutr serve` as deployed (a child process): API key files and their rotation by SIGHUP, the loopback rule,
// the startup lines that say who may use the service, and HTTPS with --tls-cert/--tls-key (issue 14, parts 1-2).
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../src/server/app.ts';
import { readTlsFiles } from '../../src/server/tls.ts';
import { makeCert, type TestCert } from './certs.ts';
import { BIN } from '../support/bin.ts';
import { diskPng, serveCli, stopCli, testModel, waitForLog } from './support.ts';

const KEY_A = 'rotation-key-A-0123456789abcdef';
const KEY_B = 'rotation-key-B-fedcba9876543210';
const dir = mkdtempSync(join(tmpdir(), 'mobileutr-security-'));

/** `mobileutr serve ...` that must fail before listening: its exit code and stderr lines. */
function refused(...args: string[]): { status: number | null; lines: string[]; stdout: string } {
  const r = spawnSync(process.execPath, [BIN, 'serve', '--size', '32', '--concurrency', '1', '--port', '0', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, lines: r.stderr.trim().split('\n'), stdout: r.stdout };
}

/** A request over HTTPS trusting only `ca`. */
function httpsRequest(url: string, ca: string, o: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<{ status: number; body: Buffer; type: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: o.method ?? 'GET', path: o.path ?? '/healthz', headers: o.headers, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), type: String(res.headers['content-type']) }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

describe('the loopback rule and the startup line', () => {
  it('the default (127.0.0.1, no keys) is open as before, and says so', async () => {
    const s = await serveCli('--size', '32', '--concurrency', '1');
    try {
      expect((await fetch(`${s.url}/v1/model`)).status).toBe(200);
      expect(s.log()).toMatch(/"level":30,.*"msg":"auth: none, loopback only \(127\.0\.0\.1\): requests need no key; pass --api-keys FILE to require keys/);
      expect(s.log()).toMatch(/"msg":"tls: off, plain HTTP/);
    } finally {
      expect(await stopCli(s)).toBe(0);
    }
  });

  it('a non-loopback --host without --api-keys is refused with one line, exit 1', () => {
    const r = refused('--host', '0.0.0.0');
    expect(r.status).toBe(1);
    expect(r.lines).toEqual([
      'mobileutr: error: refusing to listen on 0.0.0.0 without API keys: it is not a loopback address, so anyone who can reach the port could use the service; pass --api-keys FILE (one key per line), or --no-auth to serve without keys (behind a proxy that authenticates)',
    ]);
    expect(r.stdout).toBe('');
  });

  it('--no-auth on 0.0.0.0 serves without keys and warns that auth is OFF', async () => {
    const s = await serveCli('--size', '32', '--concurrency', '1', '--host', '0.0.0.0', '--no-auth');
    try {
      expect((await fetch(`${s.url}/v1/model`)).status).toBe(200);
      expect(s.log()).toMatch(/"level":40,.*"msg":"auth: OFF \(--no-auth\): anyone who can reach 0\.0\.0\.0 can use the service"/);
    } finally {
      await stopCli(s);
    }
  });

  it.each([
    [['--api-keys', '/nonexistent/keys.txt'], 'mobileutr: error: /nonexistent/keys.txt: cannot read the API key file (file not found)'],
    [['--api-keys', join(dir, 'empty.txt')], `mobileutr: error: ${join(dir, 'empty.txt')}: no API keys in the file (one key per line; blank lines and # comments are ignored)`],
    [['--api-keys', join(dir, 'a.txt'), '--no-auth'], 'mobileutr: error: --api-keys and --no-auth contradict each other; give one of them'],
  ])('key file problems are one line: %j', (args, line) => {
    writeFileSync(join(dir, 'empty.txt'), '# no keys yet\n\n');
    writeFileSync(join(dir, 'a.txt'), `${KEY_A}\n`);
    const r = refused(...args);
    expect(r.status).toBe(1);
    expect(r.lines).toEqual([line]);
  });
});

describe('API key file and SIGHUP', () => {
  it('keys from the file work; SIGHUP swaps them in without a restart; an empty file on SIGHUP keeps the old keys', async () => {
    const file = join(dir, 'keys.txt');
    writeFileSync(file, `# clients\n${KEY_A}\n`);
    chmodSync(file, 0o600);
    const s = await serveCli('--size', '32', '--concurrency', '1', '--api-keys', file, '--host', '0.0.0.0');
    const status = async (key?: string) => (await fetch(`${s.url}/v1/model`, { headers: key ? { authorization: `Bearer ${key}` } : {} })).status;
    try {
      expect(s.log()).toMatch(new RegExp(`"msg":"auth: 1 API key from ${file}; /healthz open, /metrics needs a key; SIGHUP re-reads the file"`));
      expect(s.log()).not.toMatch(/readable by every user/);
      expect([await status(), await status(KEY_B), await status(KEY_A)]).toEqual([401, 401, 200]);
      const png = await diskPng(30, 20);
      const seg = await fetch(`${s.url}/v1/segment`, { method: 'POST', body: new Uint8Array(png), headers: { 'content-type': 'image/png', authorization: `Bearer ${KEY_A}` } });
      expect(seg.status).toBe(200);

      writeFileSync(file, `${KEY_B}\n`);
      s.child.kill('SIGHUP');
      await waitForLog(s, new RegExp(`"msg":"SIGHUP: 1 API key from ${file}"`));
      expect([await status(KEY_A), await status(KEY_B)]).toEqual([401, 200]);

      writeFileSync(file, '\n# emptied by mistake\n');
      s.child.kill('SIGHUP');
      await waitForLog(s, /"level":50,.*"msg":"SIGHUP: .*: no API keys in the file .*; keeping the 1 API key loaded before"/);
      expect([await status(KEY_A), await status(KEY_B)]).toEqual([401, 200]);
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);

      const log = s.log();
      expect(log).not.toContain(KEY_A);
      expect(log).not.toContain(KEY_B);
      // the request line names the key by a digest prefix, never the key
      expect(log).toMatch(/"status":200,.*"key":"[0-9a-f]{12}".*"msg":"POST \/v1\/segment"/);
    } finally {
      expect(await stopCli(s)).toBe(0);
    }
  });
});

describe('HTTPS', () => {
  let cert: TestCert;
  beforeAll(() => {
    cert = makeCert('server', 2, dir);
  });

  it('--tls-cert/--tls-key serve HTTPS that a client trusting the test CA accepts; plain HTTP clients without it fail', async () => {
    const s = await serveCli('--size', '32', '--concurrency', '1', '--tls-cert', cert.cert, '--tls-key', cert.key);
    try {
      expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(s.log()).toMatch(/"msg":"tls: HTTPS with .*server\.crt \(CN=localhost\), valid until \d{4}-/);
      const health = await httpsRequest(s.url, cert.ca);
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body.toString()).status).toBe('ok');
      const png = await diskPng(30, 20);
      const seg = await httpsRequest(s.url, cert.ca, { method: 'POST', path: '/v1/segment', headers: { 'content-type': 'image/png' }, body: png });
      expect(seg.status).toBe(200);
      expect(seg.type).toBe('image/png');
      // without the CA the certificate is not trusted
      await expect(fetch(`${s.url}/healthz`)).rejects.toThrow();
      // another CA is not enough either
      await expect(httpsRequest(s.url, makeCert('other', 2, dir).ca)).rejects.toThrow(/self.signed|certificate|verify/i);
    } finally {
      expect(await stopCli(s)).toBe(0);
    }
  });

  it.each([
    ['a missing certificate', () => ['--tls-cert', '/nonexistent/c.pem', '--tls-key', cert.key], () => 'mobileutr: error: --tls-cert /nonexistent/c.pem: cannot read (file not found)'],
    [
      'a certificate that is not PEM',
      () => {
        writeFileSync(join(dir, 'junk.crt'), 'hello, not a certificate\n');
        return ['--tls-cert', join(dir, 'junk.crt'), '--tls-key', cert.key];
      },
      () => `mobileutr: error: --tls-cert ${join(dir, 'junk.crt')}: not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line); a DER file converts with: openssl x509 -inform der -in FILE -out cert.pem`,
    ],
    [
      "another certificate's key",
      () => ['--tls-cert', cert.cert, '--tls-key', makeCert('stranger', 2, dir).key],
      () => `mobileutr: error: --tls-key ${join(dir, 'stranger.key')} does not belong to the certificate in --tls-cert ${cert.cert} (the key of another certificate?)`,
    ],
    ['--tls-cert alone', () => ['--tls-cert', cert.cert], () => 'mobileutr: error: --tls-cert needs --tls-key (the private key of the certificate)'],
  ])('%s: one line, exit 1, no stack', (_name, args, line) => {
    const r = refused(...args());
    expect(r.status).toBe(1);
    expect(r.lines).toEqual([line()]);
  });

  it('an HTTPS server closes at once, even with a client that connected and never began its TLS handshake', async () => {
    const app = await buildServer({ model: await testModel(32), concurrency: 1, tls: { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    expect((await httpsRequest(url, cert.ca)).status).toBe(200);
    const idle = connect(Number(new URL(url).port), '127.0.0.1');
    await once(idle, 'connect');
    const closedByServer = once(idle, 'close');
    idle.on('error', () => {});
    // otherwise the close would wait for the TLS handshake timeout (10 s here; Node's default is 120 s): the test's
    // 8 s limit fails it
    await app.close();
    await closedByServer;
  }, 8000);

  it('readTlsFiles names every other problem in one line', async () => {
    const swapped = await readTlsFiles(cert.key, cert.cert).catch((e: Error) => e.message);
    expect(swapped).toBe(`--tls-cert ${cert.key}: not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line) (it holds a private key: are --tls-cert and --tls-key swapped?)`);
    const corrupt = join(dir, 'corrupt.crt');
    writeFileSync(corrupt, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(await readTlsFiles(corrupt, cert.key).catch((e: Error) => e.message)).toMatch(new RegExp(`^--tls-cert ${corrupt}: not a readable certificate \\(.+\\)$`));
    const encrypted = join(dir, 'encrypted.key');
    spawnSync('openssl', ['pkey', '-in', cert.key, '-aes256', '-passout', 'pass:secret', '-out', encrypted]);
    expect(await readTlsFiles(cert.cert, encrypted).catch((e: Error) => e.message)).toMatch(/^--tls-key .*encrypted\.key: the private key is encrypted with a passphrase; give an unencrypted key/);
    expect(await readTlsFiles(cert.cert, dir).catch((e: Error) => e.message)).toBe(`--tls-key ${dir}: cannot read (is a folder)`);
    const ok = await readTlsFiles(cert.cert, cert.key);
    expect(ok.subject).toBe('CN=localhost');
    expect(ok.warnings).toEqual([]);
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));
