// POST /v1/segment with one DICOM image (issue 14, part 6): CT slices through the volume code's 'ct' window, other
// greyscale modalities min-max stretched, 8-bit colour ultrasound as is; the mask is the one Segmenter.segment
// gives for that 8-bit image, and the JSON answer carries the pixel spacing. Malformed files are 400, what is not
// read (compressed pixel data, several frames, ...) 415/422.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrame } from '../../src/data/volume/dicom-decode.ts';
import { frameBytes, parseDicomFile, sliceOf } from '../../src/data/volume/dicom-file.ts';
import type { SegmentationModel } from '../../src/models/model.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';
import { maskArea } from '../../src/server/app.ts';
import { datasetPath, describeWithDataset } from '../support/datasets.ts';
import { dicomSlice } from '../support/dicom.ts';
import { el, part10, str, u16, ultrasound } from './dicom-writer.ts';
import { maskPixels, postImage, start, testModel, type Running } from './support.ts';

const FIXTURES = new URL('../data/volume/fixtures/dicom/', import.meta.url).pathname;
const DICOM = { 'content-type': 'application/dicom', accept: 'application/json' };

let model: SegmentationModel;
let reference: Segmenter;
let srv: Running;

beforeAll(async () => {
  model = await testModel(32);
  reference = await Segmenter.create(model);
  srv = await start({ model, concurrency: 1, maxPixels: 512 * 512 });
});
afterAll(async () => {
  await srv.close();
  await reference.release();
});

/** A CT slice in HU: a bright disk (contrast, ~150 HU) in soft tissue (40 HU), air (-1000) at the left edge. */
function ctHu(rows: number, columns: number): Int16Array {
  const hu = new Int16Array(rows * columns);
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < columns; x++) {
      const inside = (x - columns / 2) ** 2 + (y - rows / 2) ** 2 < (Math.min(rows, columns) / 3) ** 2;
      hu[y * columns + x] = x < 4 ? -1000 : inside ? 150 + (x % 7) : 40 + ((x * 3 + y) % 11) - 5;
    }
  return hu;
}

/** The 8-bit image of HU values with the 'ct' preset, computed here independently: clip to [-125, 275], x255/400. */
const ctWindow = (hu: ArrayLike<number>) => Uint8Array.from(hu, (v) => Math.round((Math.min(275, Math.max(-125, v)) + 125) * (255 / 400)));
const greyPng = (pixels: Uint8Array, width: number, height: number, channels: 1 | 3 = 1) => sharp(pixels, { raw: { width, height, channels } }).png().toBuffer();

/** The answer must be Segmenter.segment's mask for `png` (the 8-bit image the DICOM maps to). */
async function expectMaskOf(json: { mask_png_base64: string; width: number; height: number; area_pixels: number }, png: Buffer) {
  const expected = await reference.segment(png);
  const mask = await maskPixels(Buffer.from(json.mask_png_base64, 'base64'));
  expect([mask.width, mask.height]).toEqual([json.width, json.height]);
  expect(Buffer.from(mask.pixels).equals(Buffer.from(expected.mask))).toBe(true);
  expect(json.area_pixels).toBe(maskArea(expected.mask, json.width, json.height).pixels);
}

/** The same file with the Modality 'CT' of test/support/dicom.ts's writer replaced (same length). */
function withModality(file: Uint8Array, modality: 'MR' | 'XA'): Buffer {
  const out = Buffer.from(file);
  const at = out.indexOf(Buffer.from([0x08, 0x00, 0x60, 0x00, 0x43, 0x53, 0x02, 0x00, 0x43, 0x54])); // (0008,0060) CS 2 "CT"
  expect(at).toBeGreaterThan(0);
  out.write(modality, at + 8, 'latin1');
  return out;
}

describe('DICOM in', () => {
  it('a CT slice: HU through the ct window, the mask as for the PNG of that image, pixel spacing and area in mm²', async () => {
    const [rows, columns] = [48, 64];
    const hu = ctHu(rows, columns);
    const stored = Uint16Array.from(hu, (v) => v + 1024); // unsigned, RescaleIntercept -1024 as scanners write it
    const file = dicomSlice({ rows, columns, pixels: stored, position: [0, 0, 0], pixelSpacing: [0.5, 0.75], intercept: -1024, bitsStored: 12 }, '1.2.3.4.5.1');
    const res = await postImage(srv.url, file, DICOM);
    expect(res.status).toBe(200);
    const j = res.json;
    expect(j).toMatchObject({ model: 'mobileutr', width: columns, height: rows, pixel_spacing_mm: [0.5, 0.75] });
    expect(j.dicom).toEqual({
      modality: 'CT',
      photometric: 'MONOCHROME2',
      transfer_syntax: 'Explicit VR Little Endian',
      bits_stored: 12,
      intensity: { mapping: 'ct', window_hu: [-125, 275] },
      pixel_spacing_mm: [0.5, 0.75],
      pixel_spacing_source: 'PixelSpacing',
    });
    await expectMaskOf(j, await greyPng(ctWindow(hu), columns, rows));
    expect(j.area_pixels).toBeGreaterThan(0);
    expect(j.area_mm2).toBeCloseTo(j.area_pixels * 0.5 * 0.75, 9);
    for (const k of ['decode', 'queue', 'inference', 'total']) expect(j.timing_ms[k]).toBeGreaterThanOrEqual(0);

    // without Accept: application/json the answer is the mask PNG, as for a PNG upload
    const png = await postImage(srv.url, file, { 'content-type': 'application/dicom' });
    expect(png.status).toBe(200);
    expect(png.type).toBe('image/png');
    expect(png.bytes.equals(Buffer.from(j.mask_png_base64, 'base64'))).toBe(true);
    // and as application/octet-stream or a multipart file (the kind is read from the bytes)
    expect((await postImage(srv.url, file, { 'content-type': 'application/octet-stream', accept: 'application/json' })).json.dicom.modality).toBe('CT');
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(file)], { type: 'application/dicom' }), 'slice.dcm');
    const multi = await (await fetch(`${srv.url}/v1/segment`, { method: 'POST', body: form, headers: { accept: 'application/json' } })).json();
    expect(multi.mask_png_base64).toBe(j.mask_png_base64);
  });

  it('an MR slice: min-max to 8 bits (signed 16-bit, slope and intercept applied), and the JSON says so', async () => {
    const [rows, columns] = [40, 50];
    const stored = Int16Array.from(ctHu(rows, columns), (v) => v * 2 - 300);
    const file = withModality(dicomSlice({ rows, columns, pixels: stored, position: [0, 0, 0], pixelSpacing: [1.2, 1.1], slope: 0.5, intercept: 10 }, '1.2.3.4.5.2'), 'MR');
    const res = await postImage(srv.url, file, DICOM);
    expect(res.status).toBe(200);
    const values = Array.from(stored, (v) => v * 0.5 + 10);
    const [lo, hi] = [Math.min(...values), Math.max(...values)];
    expect(res.json.dicom).toMatchObject({ modality: 'MR', intensity: { mapping: 'min-max', range: [lo, hi], inverted: false } });
    expect(res.json.pixel_spacing_mm).toEqual([1.2, 1.1]);
    await expectMaskOf(res.json, await greyPng(Uint8Array.from(values, (v) => Math.round(((v - lo) * 255) / (hi - lo))), columns, rows));
  });

  it('an 8-bit RGB ultrasound frame (either planar configuration): colour as is, spacing from its ultrasound region', async () => {
    const [rows, columns] = [36, 52];
    const { file, rgb } = ultrasound(rows, columns);
    const res = await postImage(srv.url, file, DICOM);
    expect(res.status).toBe(200);
    expect(res.json.dicom).toEqual({
      modality: 'US',
      photometric: 'RGB',
      transfer_syntax: 'Explicit VR Little Endian',
      bits_stored: 8,
      intensity: { mapping: 'none (8-bit colour)' },
      pixel_spacing_mm: [0.2, 0.1],
      pixel_spacing_source: 'SequenceOfUltrasoundRegions',
    });
    await expectMaskOf(res.json, await greyPng(rgb, columns, rows, 3));
    const planar = await postImage(srv.url, ultrasound(rows, columns, { planar: 1 }).file, DICOM);
    expect(planar.json.mask_png_base64).toBe(res.json.mask_png_base64);
  });

  it('the same real slice as Implicit VR, Explicit VR Big Endian and Deflated (GDCM/DCMTK fixtures) gives one answer', async () => {
    const answers = [];
    for (const syntax of ['implicit', 'bigendian', 'deflated']) {
      const res = await postImage(srv.url, readFileSync(join(FIXTURES, syntax, 'slice001.dcm')), DICOM);
      expect(res.status, syntax).toBe(200);
      expect(res.json.dicom.modality).toBe('CT');
      expect(res.json.pixel_spacing_mm).toEqual([0.6, 0.8]);
      answers.push(res.json.mask_png_base64);
    }
    expect(new Set(answers).size).toBe(1);
  });

  it('malformed files are 400, what is not read 415 or 422, each with one clear line; the service carries on', async () => {
    const good = dicomSlice({ rows: 16, columns: 16, pixels: new Int16Array(256).fill(40), position: [0, 0, 0] }, '1.2.3.4.5.3');
    const garbage = Buffer.concat([good.subarray(0, 132), Buffer.from('this is not a DICOM data set at all, just text after the magic')]);
    const noPixels = part10([el(0x08, 0x60, 'CS', str('CT')), el(0x28, 0x10, 'US', u16(16)), el(0x28, 0x11, 'US', u16(16))]);
    const shortPixels = dicomSlice({ rows: 16, columns: 16, pixels: new Int16Array(100), position: [0, 0, 0] }, '1.2.3.4.5.4');
    const cases: [string, Uint8Array, number, RegExp][] = [
      ['truncated', good.subarray(0, good.length - 300), 400, /^uploaded DICOM: malformed file \(buffer overrun: the file is truncated, or an element length is wrong\)$/],
      ['garbage after DICM', garbage, 400, /^uploaded DICOM: malformed file \(no TransferSyntaxUID in the file meta information\)$/],
      ['short pixel data', shortPixels, 400, /^uploaded DICOM: malformed file \(pixel data has 200 bytes, 16×16×2 expected\)$/],
      ['no pixel data', noPixels, 422, /^uploaded DICOM holds no image \(no Pixel Data element\)/],
      ['JPEG 2000', readFileSync(join(FIXTURES, 'j2k', 'slice000.dcm')), 415, /^uploaded DICOM is stored as JPEG 2000 Lossless; this service reads uncompressed DICOM only \(.*Explicit VR Little Endian.*\); convert it with e\.g\. gdcmconv --raw or dcmdjpeg$/],
      ['a deflate bomb', Buffer.concat([part10([], '1.2.840.10008.1.2.1.99'), deflateRawSync(Buffer.alloc(64 * 2 ** 20))]), 422, /^uploaded DICOM: the deflated dataset inflates to more than \d+ bytes$/],
      ['a cine loop', ultrasound(8, 8, { frames: 3 }).file, 422, /^uploaded DICOM has 3 frames; send a single image/],
      ['over --max-pixels', dicomSlice({ rows: 600, columns: 600, pixels: new Int16Array(360_000), position: [0, 0, 0] }, '1.2.3.4.5.5'), 422, /^uploaded DICOM image is 600x600 = 360,000 pixels; this server accepts at most 262,144 pixels$/],
    ];
    for (const [name, body, status, message] of cases) {
      const res = await postImage(srv.url, body, DICOM);
      expect(res.status, name).toBe(status);
      expect(res.json.error, name).toMatch(message);
      expect(res.json.error).not.toMatch(/\n|\bat .*\.(ts|js):\d+/);
    }
    const h = await (await fetch(`${srv.url}/healthz`)).json();
    expect(h.status).toBe('ok');
    expect(h.requests.server_errors).toBe(0);
    expect((await postImage(srv.url, good, DICOM)).status).toBe(200);
  });
});

describeWithDataset(
  'totalseg_examples',
  'DICOM in: a real CT slice (totalseg_examples/example_ct_dicom)',
  () => {
    const folder = join(datasetPath('totalseg_examples'), 'example_ct_dicom');
    const file = join(folder, readdirSync(folder).sort()[10]!);

    it('as stored (JPEG 2000 Lossless) it is refused with 415 naming the syntax', async () => {
      const res = await postImage(srv.url, readFileSync(file), DICOM);
      expect(res.status).toBe(415);
      expect(res.json.error).toMatch(/^uploaded DICOM is stored as JPEG 2000 Lossless; this service reads uncompressed DICOM only/);
    });

    it('decompressed to Explicit VR Little Endian: the ct window of its HU, 0.977 mm pixels, the mask as for that image', async () => {
      const ds = parseDicomFile(readFileSync(file));
      const s = sliceOf(ds, file)!;
      const stored = (await decodeFrame(s.syntax, frameBytes(ds, true), s)) as Uint16Array;
      const raw = dicomSlice(
        { rows: s.rows, columns: s.columns, pixels: Uint16Array.from(stored), position: s.position as [number, number, number], pixelSpacing: s.pixelSpacing as [number, number], slope: s.slope, intercept: s.intercept, bitsStored: s.bitsStored },
        '1.2.3.4.5.6',
      );
      const res = await postImage(srv.url, raw, DICOM);
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ width: 512, height: 512, pixel_spacing_mm: [0.9765625, 0.9765625] });
      expect(res.json.dicom.intensity).toEqual({ mapping: 'ct', window_hu: [-125, 275] });
      await expectMaskOf(res.json, await greyPng(ctWindow(Array.from(stored, (v) => v * s.slope + s.intercept)), 512, 512));
    });
  },
  'example_ct_dicom',
);
