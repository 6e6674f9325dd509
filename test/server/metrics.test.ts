// GET /metrics (issue 14, part 4): Prometheus text that a strict parser accepts, counting requests by route and
// status, the queue/inference/total time histograms, batch sizes, worker restarts and the process RSS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SegmentationModel } from '../../src/models/model.ts';
import { WorkerPool } from '../../src/server/worker-pool.ts';
import { parsePrometheusText, valueOf } from './prometheus.ts';
import { diskPng, postImage, start, testModel, waitUntil, type Running } from './support.ts';

let model: SegmentationModel;
beforeAll(async () => {
  model = await testModel(32);
});

async function scrape(url: string) {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheusText(await res.text());
}

describe('GET /metrics', () => {
  let pool: WorkerPool;
  let srv: Running;
  beforeAll(async () => {
    pool = await WorkerPool.create(model, { workers: 1 });
    srv = await start({ model, runner: pool, concurrency: 1, maxBatch: 4 });
  });
  afterAll(async () => {
    await srv.close();
    await pool.close();
  });

  it('counts requests by route, method and status, and times them', async () => {
    const png = await diskPng(40, 30);
    for (let i = 0; i < 3; i++) expect((await postImage(srv.url, png)).status).toBe(200);
    expect((await postImage(srv.url, 'not an image')).status).toBe(422);
    expect((await fetch(`${srv.url}/no/such/path?x=1`)).status).toBe(404);
    for (let i = 0; i < 2; i++) expect((await fetch(`${srv.url}/healthz`)).status).toBe(200);

    const m = await scrape(srv.url);
    const requests = (route: string, method: string, status: string) => valueOf(m, 'mobileutr_http_requests_total', { route, method, status });
    expect(m.get('mobileutr_http_requests_total')!.type).toBe('counter');
    expect(requests('/v1/segment', 'POST', '200')).toBe(3);
    expect(requests('/v1/segment', 'POST', '422')).toBe(1);
    expect(requests('unmatched', 'GET', '404')).toBe(1);
    expect(requests('/healthz', 'GET', '200')).toBe(2);
    expect(m.get('mobileutr_http_request_duration_seconds')!.type).toBe('histogram');
    expect(valueOf(m, 'mobileutr_http_request_duration_seconds_count', { route: '/v1/segment' })).toBe(4);
    expect(valueOf(m, 'mobileutr_http_request_duration_seconds_sum', { route: '/v1/segment' })).toBeGreaterThan(0);
    // three images ran, each waited for its batch once; batches ran one to three of them
    expect(valueOf(m, 'mobileutr_queue_wait_seconds_count')).toBe(3);
    expect(valueOf(m, 'mobileutr_batch_size_sum')).toBe(3);
    const batches = valueOf(m, 'mobileutr_batch_size_count')!;
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(valueOf(m, 'mobileutr_inference_seconds_count')).toBe(batches);
    expect(valueOf(m, 'mobileutr_batch_size_bucket', { le: '4' })).toBe(batches);
    expect(valueOf(m, 'mobileutr_worker_restarts_total', { kind: 'inference' })).toBe(0);
    expect(valueOf(m, 'mobileutr_workers_alive', { kind: 'inference' })).toBe(1);
    expect(valueOf(m, 'mobileutr_request_capacity')).toBe(1 * 4 + 16);
    expect(valueOf(m, 'mobileutr_requests_in_flight')).toBe(0);
    // process metrics (prom-client's defaults)
    expect(valueOf(m, 'process_resident_memory_bytes')).toBeGreaterThan(10 * 2 ** 20);
    expect(m.get('nodejs_heap_size_used_bytes')?.type).toBe('gauge');
    // the first scrape counts itself in the next one
    const again = await scrape(srv.url);
    expect(valueOf(again, 'mobileutr_http_requests_total', { route: '/metrics', method: 'GET', status: '200' })).toBe(1);
    expect(valueOf(again, 'mobileutr_http_requests_total', { route: '/v1/segment', method: 'POST', status: '200' })).toBe(3);
  });

  it('counts a worker restart', async () => {
    process.kill(pool.pids[0]!, 'SIGKILL');
    await waitUntil(() => pool.alive === 0);
    expect((await postImage(srv.url, await diskPng(20, 20))).status).toBe(200);
    const m = await scrape(srv.url);
    expect(valueOf(m, 'mobileutr_worker_restarts_total', { kind: 'inference' })).toBe(1);
    expect(valueOf(m, 'mobileutr_workers_alive', { kind: 'inference' })).toBe(1);
    const health = await (await fetch(`${srv.url}/healthz`)).json();
    expect(health.workers.restarts).toBe(1);
  });
});

describe('the test parser is strict', () => {
  it.each([
    ['no final newline', '# TYPE a counter\na 1'],
    ['a bad value', '# TYPE a counter\na one\n'],
    ['an unquoted label', '# TYPE a counter\na{x=1} 1\n'],
    ['a duplicate series', '# TYPE a counter\na{x="1"} 1\na{x="1"} 2\n'],
    ['a negative counter', '# TYPE a counter\na -1\n'],
    ['a TYPE after samples', 'a 1\n# TYPE a counter\n'],
    ['interleaved families', '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="2"} 1\n'],
    ['non-cumulative buckets', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
    ['+Inf bucket != count', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n'],
    ['no +Inf bucket', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
  ])('rejects %s', (_name, text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });

  it('accepts escapes, comments, NaN and timestamps', () => {
    const m = parsePrometheusText('# a comment\n# HELP g a "gauge"\n# TYPE g gauge\ng{path="a\\"b\\\\c\\n"} NaN 1700000000000\ng{path="x"} -Inf\n');
    expect(m.get('g')!.samples.map((s) => s.labels.path)).toEqual(['a"b\\c\n', 'x']);
  });
});
