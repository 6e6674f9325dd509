import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { volumeMetaFrom, type VolumeModelMeta } from '../../src/data/volume/model-meta.ts';
import { decodeNifti } from '../../src/data/volume/nifti-read.ts';
import { readSafetensorsFile } from '../../src/io/safetensors.ts';
import type { SegmentationModel } from '../../src/models/model.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';
import { segmentVolume } from '../../src/pipeline/volume.ts';
import { WorkerPool } from '../../src/server/worker-pool.ts';
import { CT_META, geometryBytes, volumeModel, writeAwkwardCt } from '../pipeline/volume-synthetic.ts';
import { diskPng, postImage, sleep, slowRunner, start, testModel, waitForHealth, type Running } from './support.ts';

const NO_STACK = /\n\s+at |node_modules|\.ts:\d+/;
const dir = mkdtempSync(join(tmpdir(), 'serve-volume-'));
const ctPath = join(dir, 'ct.nii.gz');
const weightsPath = join(dir, 'ct-model.safetensors');
const DIMS: [number, number, number] = [23, 19, 7];

let model: SegmentationModel;
let meta: VolumeModelMeta;
let reference: Segmenter;
let gz: Buffer;
let raw: Buffer;
let expected: Uint8Array | Int16Array;

/**
 * A NIfTI-1 header declaring `dims` int16 voxels, then `mb` MiB of zeros, gzip'd: one gzip member for the header,
 * then the same 1 MiB-of-zeros member `mb` times (gunzip reads concatenated members as one stream; ~1 KB each).
 */
function bomb(dims: number[], mb: number): Buffer {
  const header = Buffer.from(raw.subarray(0, 352));
  header.writeInt16LE(dims.length, 40);
  dims.forEach((d, i) => header.writeInt16LE(d, 42 + 2 * i));
  const zeros = gzipSync(Buffer.alloc(2 ** 20), { level: 9 });
  return Buffer.concat([gzipSync(header), ...Array.from({ length: mb }, () => zeros)]);
}

beforeAll(async () => {
  writeAwkwardCt(ctPath, DIMS);
  gz = readFileSync(ctPath);
  raw = gunzipSync(gz);
  model = await volumeModel(CT_META, 32, 7, weightsPath);
  meta = volumeMetaFrom((await readSafetensorsFile(weightsPath)).metadata, weightsPath)!;
  reference = await Segmenter.create(model, { threads: 1 });
  expected = (await segmentVolume(reference, model.options, decodeNifti(raw, 'reference'), meta, { batch: 4 })).labels;
});

afterAll(async () => {
  await reference.release();
});

/** The label values of an answered .nii.gz, and its datatype. */
function labelsOf(bytes: Uint8Array) {
  const v = decodeNifti(bytes, 'answer');
  return { dims: v.dims, datatype: v.datatype, values: Array.from(v.data) };
}

describe('HTTP service: NIfTI volumes through the real inference workers', () => {
  let pool: WorkerPool;
  let srv: Running;
  beforeAll(async () => {
    pool = await WorkerPool.create(model, { workers: 1 });
    srv = await start({ model, volume: meta, weightsSource: weightsPath, runner: pool, concurrency: 1, maxBatch: 4, maxUploadBytes: 1200 * 1024, maxVoxels: 100_000 });
  });
  afterAll(async () => {
    await srv.close();
    await pool.close();
  });

  it('GET /v1/model says it takes volumes and lists the classes', async () => {
    const info = await (await fetch(`${srv.url}/v1/model`)).json();
    expect(info).toMatchObject({ input: 'volume', class_names: CT_META.classNames, in_channels: 1, classes: 3, default_weights: false });
    expect(info.volume).toMatchObject({ formats: ['.nii', '.nii.gz'], axis: 'axial', slice_context: 0, class_values: [0, 3, 7], class_names: CT_META.classNames });
    expect(info.limits.max_voxels).toBe(100_000);
    expect(info.output).toMatch(/label NIfTI/);
  });

  it('a .nii.gz body gives the label .nii.gz on the same grid, equal to segmentVolume', async () => {
    const res = await postImage(srv.url, gz, { 'content-type': 'application/gzip' });
    expect(res.status, res.bytes.toString()).toBe(200);
    expect(res.type).toBe('application/gzip');
    expect(res.headers.get('content-disposition')).toMatch(/filename="labels\.nii\.gz"/);
    expect(res.headers.get('server-timing')).toMatch(/inference;dur=/);
    expect(res.bytes[0]).toBe(0x1f);
    expect(geometryBytes(res.bytes)).toEqual(geometryBytes(gz));
    const labels = labelsOf(res.bytes);
    expect(labels.dims).toEqual(DIMS);
    expect(labels.datatype).toBe('uint8');
    expect(labels.values).toEqual(Array.from(expected));
    expect(new Set(labels.values).size).toBeGreaterThan(1); // the test model does not answer one class everywhere
  });

  it('raw .nii, other content types and multipart give the same labels', async () => {
    const form = (field: string, bytes: Buffer, name: string) => {
      const f = new FormData();
      f.append(field, new Blob([new Uint8Array(bytes)]), name);
      return f;
    };
    const answers = [
      await postImage(srv.url, raw, { 'content-type': 'application/octet-stream' }),
      await postImage(srv.url, raw, { 'content-type': 'application/x-nifti' }),
      await postImage(srv.url, gz, { 'content-type': 'application/x-gzip' }),
      await postImage(srv.url, gz, { 'content-type': 'application/nifti' }),
    ];
    for (const [field, bytes, name] of [['volume', gz, 'ct.nii.gz'], ['image', raw, 'ct.nii']] as const) {
      const r = await fetch(`${srv.url}/v1/segment`, { method: 'POST', body: form(field, bytes, name) });
      answers.push({ status: r.status, type: r.headers.get('content-type') ?? '', headers: r.headers, bytes: Buffer.from(await r.arrayBuffer()), json: undefined });
    }
    for (const [i, res] of answers.entries()) {
      expect(res.status, `answer ${i}: ${res.bytes.toString().slice(0, 200)}`).toBe(200);
      expect(geometryBytes(res.bytes)).toEqual(geometryBytes(gz));
      expect(labelsOf(res.bytes).values).toEqual(Array.from(expected));
    }
  });

  it('Accept: application/json gives dims, spacing, voxels and mL per class, timing and the label file', async () => {
    const res = await postImage(srv.url, gz, { 'content-type': 'application/gzip', accept: 'application/json' });
    expect(res.status).toBe(200);
    const body = res.json;
    expect(body).toMatchObject({ model: 'mobileutr', dims: DIMS, datatype: 'int16', nifti_version: 1, axis: 'axial', slices: 7 });
    expect(body.spacing_mm.map((s: number) => +s.toFixed(4))).toEqual([0.8, 1.1, 2.5]);
    expect(body.voxel_volume_ml).toBeCloseTo((0.8 * 1.1 * 2.5) / 1000, 8);
    const counts = CT_META.classValues.map((v) => Array.from(expected).filter((x) => x === v).length);
    expect(body.classes).toEqual(
      CT_META.classNames.map((name, k) => ({ name, value: CT_META.classValues[k], voxels: counts[k], volume_ml: expect.closeTo(counts[k]! * body.voxel_volume_ml, 9) })),
    );
    expect(counts.reduce((a, b) => a + b)).toBe(DIMS[0] * DIMS[1] * DIMS[2]);
    const file = Buffer.from(body.labels_nii_gz_base64, 'base64');
    expect(geometryBytes(file)).toEqual(geometryBytes(gz));
    expect(labelsOf(file).values).toEqual(Array.from(expected));
    for (const k of ['queue', 'decode', 'inference', 'slicing', 'encode', 'total']) expect(body.timing_ms[k], k).toBeGreaterThanOrEqual(0);
    expect(body.timing_ms.total).toBeGreaterThanOrEqual(body.timing_ms.inference);
  });

  it('a gzip bomb is refused from its header at once; one lying about its dims stops at the declared size', async () => {
    // 1 GiB of zeros in 1 MB of gzip behind a header declaring 2048×2048×2048
    const huge = bomb([2048, 2048, 2048], 1000);
    expect(huge.length).toBeLessThan(1.1 * 2 ** 20);
    const rss = process.memoryUsage.rss();
    let t = performance.now();
    const refused = await postImage(srv.url, huge, { 'content-type': 'application/gzip' });
    expect(refused.status).toBe(422);
    expect(refused.json.error).toMatch(/uploaded volume: 2048×2048×2048 = 8,589,934,592 voxels is more than this server's limit of 100,000 voxels/);
    expect(performance.now() - t).toBeLessThan(3000);
    // 10×10×10 declared, 1 GiB inside: inflating stops after the declared 2,352 bytes
    const liar = bomb([10, 10, 10], 1000);
    t = performance.now();
    const stopped = await postImage(srv.url, liar, { 'content-type': 'application/gzip' });
    expect(stopped.status).toBe(422);
    expect(stopped.json.error).toMatch(/uploaded volume: the data inflates to more than the header declares 10×10×10 int16 voxels/);
    expect(performance.now() - t).toBeLessThan(3000);
    expect(process.memoryUsage.rss() - rss).toBeLessThan(100 * 2 ** 20);
    const health = await (await fetch(`${srv.url}/healthz`)).json();
    expect(health).toMatchObject({ status: 'ok', requests: { server_errors: 0 }, volumes: { running: 0, waiting: 0, workers: 1 } });
  });

  it('bad volumes and wrong kinds get a clear 4xx JSON error, never a stack trace', async () => {
    const fourD = Buffer.concat([raw, raw.subarray(352)]);
    fourD.writeInt16LE(4, 40);
    fourD.writeInt16LE(2, 48);
    const rgb = Buffer.from(raw);
    rgb.writeInt16LE(128, 70);
    rgb.writeInt16LE(24, 72);
    const wrongDims = Buffer.from(raw);
    wrongDims.writeInt16LE(DIMS[2] + 1, 46);
    const big = bomb([100, 100, 11], 0);
    expect(gunzipSync(big).length).toBe(352);
    const octet = { 'content-type': 'application/octet-stream' };
    const gzType = { 'content-type': 'application/gzip' };
    const cases: [string, Uint8Array | string, Record<string, string>, number, RegExp][] = [
      ['truncated .nii.gz', gz.subarray(0, gz.length - 200), gzType, 422, /uploaded volume: the gzip stream is truncated/],
      ['truncated .nii', raw.subarray(0, raw.length - 100), octet, 422, /uploaded volume: the file has \d+ bytes, but the header declares .*\(truncated file\?\)/],
      ['header cut short', raw.subarray(0, 200), octet, 422, /uploaded volume: too short for a NIfTI header/],
      ['dims not matching the data', wrongDims, octet, 422, /header dimensions disagree with the data size/],
      ['4-D', fourD, octet, 422, /uploaded volume: a 4-D file \(23×19×7×2, 2 volumes\); send one 3-D volume per request/],
      ['4-D gzip', gzipSync(fourD), gzType, 422, /a 4-D file/],
      ['RGB datatype', rgb, octet, 422, /uploaded volume: NIfTI datatype .* is not supported/],
      ['over --max-voxels', big, gzType, 422, /110,000 voxels is more than this server's limit of 100,000/],
      ['gzip that is not NIfTI', gzipSync(Buffer.from('hello '.repeat(100))), gzType, 422, /uploaded volume: not a NIfTI file/],
      ['over the upload limit', Buffer.concat([raw, Buffer.alloc(1.3 * 2 ** 20)]), octet, 413, /upload larger than the limit/],
      ['PNG', await diskPng(20, 20), { 'content-type': 'image/png' }, 415, /uploaded PNG image: this model was trained on volumes; send a NIfTI volume/],
      ['text', 'not a volume at all', octet, 415, /not a NIfTI file .* this model was trained on volumes/],
      ['text/plain', 'x', { 'content-type': 'text/plain' }, 415, /unsupported content type "text\/plain"; send multipart\/form-data with the NIfTI file in the field "volume"/],
    ];
    for (const [name, body, headers, status, message] of cases) {
      const res = await postImage(srv.url, body, headers);
      expect(res.status, name).toBe(status);
      expect(res.type, name).toMatch(/application\/json/);
      expect(res.json?.error, name).toMatch(message);
      expect(JSON.stringify(res.json), name).not.toMatch(NO_STACK);
    }
    const health = await (await fetch(`${srv.url}/healthz`)).json();
    expect(health).toMatchObject({ status: 'ok', requests: { server_errors: 0 } });
    expect((await postImage(srv.url, gz, gzType)).status).toBe(200);
  });
});

describe('HTTP service: volumes and time', () => {
  it('health checks are answered at once while a volume is being segmented', async () => {
    const runner = slowRunner(reference, 400);
    const srv = await start({ model, volume: meta, runner, concurrency: 1, maxBatch: 1 });
    try {
      const answer = postImage(srv.url, gz, { 'content-type': 'application/gzip' });
      await waitForHealth(srv.url, (h) => h.queue.running_batches === 1);
      const times: number[] = [];
      for (let i = 0; i < 8; i++) {
        const t = performance.now();
        const h = await (await fetch(`${srv.url}/healthz`)).json();
        times.push(performance.now() - t);
        expect(h).toMatchObject({ status: 'ok', queue: { in_flight: 1 }, volumes: { running: 1 } });
        await sleep(50);
      }
      // each slice takes 400 ms: a blocked main thread would answer no faster than that
      expect(Math.max(...times)).toBeLessThan(300);
      const res = await answer;
      expect(res.status).toBe(200);
      expect(labelsOf(res.bytes).values).toEqual(Array.from(expected));
      // the 7 axial slices went through the batcher one by one (max-batch 1)
      expect(runner.sizes).toEqual([1, 1, 1, 1, 1, 1, 1]);
    } finally {
      await srv.close();
    }
  });

  it('a volume not done within --timeout-ms gets 503 + Retry-After; its remaining slices are dropped', async () => {
    const runner = slowRunner(reference, 300);
    const srv = await start({ model, volume: meta, runner, concurrency: 1, maxBatch: 1, timeoutMs: 700 });
    try {
      const t = performance.now();
      const res = await postImage(srv.url, gz, { 'content-type': 'application/gzip' });
      expect(res.status).toBe(503);
      expect(res.json.error).toMatch(/timed out after 700 ms/);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(performance.now() - t).toBeLessThan(3000);
      const health = await waitForHealth(srv.url, (h) => (h as unknown as { volumes: { running: number } }).volumes.running === 0 && h.queue.running_batches === 0, 3000);
      expect(health).toMatchObject({ status: 'ok', queue: { in_flight: 0 }, requests: { timed_out: 1 } });
      expect(runner.sizes.length).toBeLessThan(7);
    } finally {
      await srv.close();
    }
  });

  it('a 2-D model refuses a NIfTI with 415, saying it was not trained on volumes', async () => {
    const flat = await testModel(32);
    const seg = await Segmenter.create(flat);
    const srv = await start({ model: flat, runner: seg });
    try {
      for (const [body, type] of [
        [gz, 'application/gzip'],
        [raw, 'application/octet-stream'],
      ] as const) {
        const res = await postImage(srv.url, body, { 'content-type': type });
        expect(res.status).toBe(415);
        expect(res.json.error).toMatch(/this model was not trained on volumes/);
      }
      const info = await (await fetch(`${srv.url}/v1/model`)).json();
      expect(info).toMatchObject({ input: 'image', volume: null, class_names: null });
      expect((await postImage(srv.url, await diskPng(20, 20))).status).toBe(200);
    } finally {
      await srv.close();
      await seg.release();
    }
  });

  it('a volume model whose channels do not fit its metadata is refused at startup', async () => {
    await expect(start({ model, volume: { ...meta, context: 1 } })).rejects.toThrow(/slice context 1 give 3/);
  });
});
