import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { saveWeights } from '../../src/models/weights.ts';
import { diskPng, serveCli as serve, testModel } from './support.ts';
import { BIN } from '../support/bin.ts';



describe('mobileutr serve', () => {
  it('a missing weights file exits non-zero with one line', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--weights', '/nonexistent/w.safetensors', '--port', '0'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual(['mobileutr: error: /nonexistent/w.safetensors: file not found']);
  });

  it.each([
    [['--port', '70000'], /must be a port number from 0 to 65535/],
    [['--max-upload-mb', 'lots'], /"lots" is not a size in MB/],
    [['--concurrency', '0'], /must be >= 1/],
  ])('bad option %j fails with one line', (args, pattern) => {
    const r = spawnSync(process.execPath, [BIN, 'serve', ...args], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('without --weights it says so loudly, in the log and in GET /v1/model; SIGINT stops it with exit 0', async () => {
    const s = await serve('--size', '32', '--concurrency', '1');
    try {
      const info = await (await fetch(`${s.url}/v1/model`)).json();
      expect(info).toMatchObject({ name: 'mobileutr', input_size: 32, default_weights: true });
      expect(s.log()).toMatch(/"level":40.*WARNING: no weights file given: serving DEFAULT-INITIALISED/);
    } finally {
      s.child.kill('SIGINT');
    }
    expect(await s.exit).toBe(0);
  });

  it('SIGTERM stops accepting, finishes the request in flight, and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mobileutr-serve-'));
    const weights = join(dir, 'w.safetensors');
    await saveWeights(await testModel(32), weights);
    const s = await serve('--weights', weights, '--concurrency', '1');
    const info = await (await fetch(`${s.url}/v1/model`)).json();
    expect(info).toMatchObject({ input_size: 32, weights, default_weights: false });
    expect(info.warning).toBeUndefined();

    // a request whose body is half sent when the signal comes
    const image = await diskPng(64, 48);
    const { port } = new URL(s.url);
    const answer = new Promise<{ status: number; type: string; bytes: number }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: Number(port), method: 'POST', path: '/v1/segment', headers: { 'content-type': 'image/png', 'content-length': image.length } },
        (res) => {
          let bytes = 0;
          res.on('data', (d: Buffer) => (bytes += d.length));
          res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), bytes }));
        },
      );
      req.on('error', reject);
      req.write(image.subarray(0, 100));
      setTimeout(() => {
        s.child.kill('SIGTERM');
        setTimeout(() => {
          // no new connections while the old request finishes
          refused = fetch(`${s.url}/healthz`).then(
            () => false,
            () => true,
          );
          void refused.then(() => req.end(image.subarray(100)));
        }, 300);
      }, 200);
    });
    let refused: Promise<boolean> | undefined;
    const res = await answer;
    expect(await refused).toBe(true);
    expect(res).toMatchObject({ status: 200, type: 'image/png' });
    expect(res.bytes).toBeGreaterThan(50);
    expect(await s.exit).toBe(0);
    expect(s.log()).toMatch(/SIGTERM: no new requests; finishing the ones in flight/);
  });
});
