// Bad volume inputs through the real CLI (issue 9, "Bad-input tests"): each is answered with exactly one
// `mobileutr: error:` line naming the offending file or folder and the problem, exit 1, no stack trace, and a failing
// `predict` leaves nothing (no label map, no .partial- temp file) in --out. Every input is built here, in a temp
// folder: NIfTI files from the synthetic CT of test/pipeline/volume-synthetic.ts, DICOM series with
// test/support/dicom.ts, nnU-Net datasets with test/data/volume/synthetic.ts. The reader-level messages are tested in
// test/data/volume/{nifti,dicom,dataset}.test.ts; this suite proves what the user sees.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNifti } from '../../src/data/volume/nifti-read.ts';
import { encodeProbabilityNifti } from '../../src/data/volume/nifti-write.ts';
import type { Vec3 } from '../../src/data/volume/volume.ts';
import { fill, writeSyntheticNifti, type SyntheticGrid } from '../data/volume/synthetic.ts';
import { CT_META, volumeModel, writeAwkwardCt } from '../pipeline/volume-synthetic.ts';
import { writeSeries, type SliceSpec } from '../support/dicom.ts';
import { BIN } from '../support/bin.ts';

const dir = mkdtempSync(join(tmpdir(), 'mobileutr-volume-inputs-'));
const p = (...parts: string[]) => join(dir, ...parts);
const MODEL = p('vol.safetensors');
/** Written into each child: its peak RSS (kB) at exit, to the file named by MOBILEUTR_TEST_RSS. */
const RSS_HOOK = p('rss-hook.mjs');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** The child's peak resident set size in MB. */
  rssMb: number;
}

/** `mobileutr ...args` (test/support/bin.ts) in a child process, with its peak RSS recorded at exit. */
function cli(args: string[], timeoutMs = 90_000): Promise<Run> {
  const rssFile = p(`rss-${Math.random().toString(36).slice(2)}.txt`);
  return new Promise((resolve) => {
    const t = performance.now();
    const child = spawn(process.execPath, ['--import', pathToFileURL(RSS_HOOK).href, BIN, ...args], {
      env: { ...process.env, MOBILEUTR_DEBUG: '', MOBILEUTR_TEST_RSS: rssFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const rssMb = existsSync(rssFile) ? Number(readFileSync(rssFile, 'utf8')) / 1024 : NaN;
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t, rssMb });
    });
  });
}

const STACK = /\n\s+at |node_modules\/|\.ts:\d+:\d+|internal error|Error:/;

/** Exit 1 (no signal), exactly one `mobileutr: error:` line, matching `pattern` and naming `path`, no stack trace. */
function expectCleanFailure(r: Run, pattern: RegExp, path: string): string {
  const what = `exit ${r.code} ${r.signal ?? ''}\nstderr: ${r.stderr}\nstdout: ${r.stdout}`;
  expect(r.signal, what).toBeNull();
  expect(r.code, what).toBe(1);
  expect(r.stderr + r.stdout, what).not.toMatch(STACK);
  const errors = (r.stderr + '\n' + r.stdout).split('\n').filter((l) => /^(mobileutr: )?error: /.test(l));
  expect(errors, what).toHaveLength(1);
  expect(errors[0], what).toMatch(/^mobileutr: error: /);
  expect(errors[0], what).toContain(path);
  expect(errors[0], what).toMatch(pattern);
  return errors[0]!;
}

/** What a failing predict leaves in --out: nothing at all (the folder may have been made). */
const leftIn = (out: string) => (existsSync(out) ? readdirSync(out) : []);

// ---------------------------------------------------------------------------------------------------------------
// NIfTI inputs. The source: the synthetic CT (int16, 23×19×7, NIfTI-1, vox_offset 352) as raw bytes to edit.

const DIMS: Vec3 = [23, 19, 7];
let ctGz: Uint8Array; // the good .nii.gz
let ctRaw: Uint8Array; // the same, uncompressed

/** The raw CT with header fields changed: [byte offset, int16 value] pairs. */
function editedHeader(edits: [number, number][], bytes = ctRaw): Uint8Array {
  const out = Uint8Array.from(bytes);
  const view = new DataView(out.buffer);
  for (const [at, v] of edits) view.setInt16(at, v, true);
  return out;
}

/** The CT header with another datatype/bitpix, followed by the voxel bytes that datatype needs (so only the type is wrong). */
function withDatatype(code: number, bitpix: number): Uint8Array {
  const header = editedHeader([
    [70, code],
    [72, bitpix],
  ]).subarray(0, 352);
  const out = new Uint8Array(352 + ((DIMS[0] * DIMS[1] * DIMS[2] * bitpix) >> 3));
  out.set(header);
  return out;
}

// dim[1..3] are int16 at 42, 44, 46; datatype at 70, bitpix at 72 (NIfTI-1)
const niftiCases: { name: string; file: string; build: () => Uint8Array; pattern: RegExp; args?: string[] }[] = [
  {
    name: 'a truncated .nii.gz',
    file: 'truncated.nii.gz',
    build: () => ctGz.subarray(0, 900),
    pattern: /truncated\.nii\.gz: the gzip stream is truncated/,
  },
  {
    name: 'a gzip bomb: a small .nii.gz whose header declares 2000×2000×2000 voxels (refused from the header)',
    file: 'bomb-header.nii.gz',
    // 352 bytes of header claiming 16 GB of int16: it must be refused from the header, before inflating anything
    build: () => gzipSync(editedHeader([[42, 2000], [44, 2000], [46, 2000]]).subarray(0, 352)),
    pattern: /bomb-header\.nii\.gz: 2000×2000×2000 = 8,000,000,000 voxels is more than the limit of 268,435,456$/,
  },
  {
    name: 'a gzip bomb: a 1 MB .nii.gz inflating to 1 GiB behind an honest 23×19×7 header',
    file: 'bomb-data.nii.gz',
    build: () => {
      const mib = gzipSync(Buffer.alloc(2 ** 20));
      return Buffer.concat([gzipSync(ctRaw), ...Array.from({ length: 1024 }, () => mib)]);
    },
    pattern: /bomb-data\.nii\.gz: the data inflates to more than the header declares 23×19×7 int16 voxels .*gzip bomb/,
  },
  {
    name: 'header dimensions that disagree with the data size (uncompressed .nii shorter than dims say)',
    file: 'short.nii',
    build: () => editedHeader([[46, 8]]), // dim[3] 7 -> 8
    pattern: /short\.nii: the file has 6,?470 bytes, but the header declares 23×19×8 int16 voxels from offset 352 \(7,?344 bytes\): header dimensions disagree with the data size/,
  },
  {
    name: 'header dimensions that disagree with the data size (.nii.gz)',
    file: 'short.nii.gz',
    build: () => gzipSync(editedHeader([[46, 8]])),
    pattern: /short\.nii\.gz: the data inflates to 6,?470 bytes, but the header declares 23×19×8 int16 voxels.*disagree with the data size/,
  },
  {
    name: 'a 4-D file without --volume-index',
    file: 'four-d.nii.gz',
    build: () => new Uint8Array(), // made in beforeAll (needs the decoded CT)
    pattern: /four-d\.nii\.gz: a 4-D file \(23×19×7×2, 2 volumes\); pick one with --volume-index 0\.\.1$/,
  },
  {
    name: 'a 4-D file with --volume-index out of range',
    file: 'four-d.nii.gz',
    build: () => new Uint8Array(),
    args: ['--volume-index', '2'],
    pattern: /four-d\.nii\.gz: --volume-index 2 is out of range; the file has volumes 0\.\.1$/,
  },
  {
    name: 'an unsupported datatype: RGB24 (128)',
    file: 'rgb24.nii.gz',
    build: () => gzipSync(withDatatype(128, 24)),
    pattern: /rgb24\.nii\.gz: NIfTI datatype RGB24.* is not supported/,
  },
  {
    name: 'an unsupported datatype: complex64 (32)',
    file: 'complex64.nii',
    build: () => withDatatype(32, 64),
    pattern: /complex64\.nii: NIfTI datatype complex64.* is not supported/,
  },
];

// ---------------------------------------------------------------------------------------------------------------
// DICOM series folders: 16×16 CT slices 2.5 mm apart.

function ctSlices(n: number, over: (k: number) => Partial<SliceSpec> = () => ({})): SliceSpec[] {
  return Array.from({ length: n }, (_, k) => ({
    rows: 16,
    columns: 16,
    pixels: Int16Array.from({ length: 256 }, (_, i) => ((i % 16) - 8) ** 2 + ((i >> 4) - 8) ** 2 < 30 ? 1100 + 10 * k : 24),
    position: [-20, -20, 2.5 * k] as [number, number, number],
    pixelSpacing: [0.8, 0.8] as [number, number],
    seriesUid: '1.2.826.0.1.3680043.2.1125.1',
    instanceNumber: k + 1,
    intercept: -1024,
    ...over(k),
  }));
}

const dicomCases: { name: string; folder: string; slices: () => SliceSpec[]; pattern: RegExp }[] = [
  {
    name: 'two series in one folder',
    folder: 'two-series',
    slices: () => ctSlices(6, (k) => ({ seriesUid: k < 3 ? '1.2.3.1' : '1.2.3.2' })),
    pattern: /two-series: 2 series in one folder \(SeriesInstanceUID 1\.2\.3\.1 \(3 files\), 1\.2\.3\.2 \(3 files\)\); put each series in a folder of its own$/,
  },
  {
    name: 'two series with blank UIDs (one tilted)',
    folder: 'two-series-blank',
    slices: () => ctSlices(6, (k) => ({ seriesUid: '', orientation: k === 5 ? [1, 0, 0, 0, 0, -1] : [1, 0, 0, 0, 1, 0] })),
    pattern: /two-series-blank: two series in one folder\? slice000\.dcm and slice005\.dcm differ in orientation/,
  },
  {
    name: 'a missing slice (uneven spacing)',
    folder: 'missing-slice',
    slices: () => ctSlices(7).filter((_, k) => k !== 4),
    pattern: /missing-slice: uneven slice spacing: slices are 2\.5 mm apart, but 5 mm between slice003\.dcm and slice004\.dcm .*1 slice\(s\) missing\?$/,
  },
  {
    name: 'a transfer syntax we cannot decode: RLE Lossless',
    folder: 'rle',
    slices: () => ctSlices(4, () => ({ syntax: '1.2.840.10008.1.2.5', encapsulated: new Uint8Array(64) })),
    pattern: /rle: slice000\.dcm is stored as RLE Lossless, which cannot be decoded; readable: .*JPEG 2000/,
  },
  {
    name: 'a transfer syntax we cannot decode: JPEG Baseline',
    folder: 'jpeg-baseline',
    slices: () => ctSlices(4, () => ({ syntax: '1.2.840.10008.1.2.4.50', encapsulated: new Uint8Array(64) })),
    pattern: /jpeg-baseline: slice000\.dcm is stored as JPEG Baseline.*, which cannot be decoded; readable: /,
  },
];

// ---------------------------------------------------------------------------------------------------------------
// Volume datasets (nnU-Net v2) where a label map is not on its image's grid.

const GRID: Vec3 = [16, 16, 6];
const image = (k0: number) => fill(Int16Array, GRID, (i, j, k) => ((i - 8) ** 2 + (j - 8) ** 2 < 20 ? 300 : -500) + 7 * ((k + k0) % 5));
const label = (dims: Vec3 = GRID) => fill(Uint8Array, dims, (i, j) => ((i - 8) ** 2 + (j - 8) ** 2 < 20 ? 1 : 0));

/** An nnU-Net dataset of good cases plus `bad` ones, whose label is written on the grid given. */
function nnunetDataset(root: string, bad: Record<string, SyntheticGrid>): string {
  const ids = ['case_00', 'case_01', 'case_02', 'case_03', ...Object.keys(bad)];
  ids.forEach((id, n) => {
    writeSyntheticNifti(join(root, 'imagesTr', `${id}_0000.nii.gz`), { dims: GRID }, image(n));
    const g = bad[id] ?? { dims: GRID };
    writeSyntheticNifti(join(root, 'labelsTr', `${id}.nii.gz`), g, label(g.dims));
  });
  writeFileSync(join(root, 'dataset.json'), JSON.stringify({ channel_names: { 0: 'CT' }, labels: { background: 0, organ: 1 }, numTraining: ids.length, file_ending: '.nii.gz' }));
  return root;
}

const DIMS_BAD: SyntheticGrid = { dims: [16, 17, 6] };
const SHIFT_BAD: SyntheticGrid = { dims: GRID, origin: [0.01, 0, 0] }; // 0.01 mm > the 1e-3 mm tolerance

beforeAll(async () => {
  writeFileSync(RSS_HOOK, `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => { if (process.env.MOBILEUTR_TEST_RSS) writeFileSync(process.env.MOBILEUTR_TEST_RSS, String(process.resourceUsage().maxRSS)); });\n`);
  writeAwkwardCt(p('ct.nii.gz'), DIMS);
  ctGz = readFileSync(p('ct.nii.gz'));
  ctRaw = gunzipSync(ctGz);
  expect(ctRaw.length).toBe(352 + 2 * DIMS[0] * DIMS[1] * DIMS[2]); // 6,470 bytes: the offsets above hold
  await volumeModel(CT_META, 32, 7, MODEL);

  mkdirSync(p('nifti'));
  for (const c of niftiCases) if (c.file !== 'four-d.nii.gz') writeFileSync(p('nifti', c.file), c.build());
  const ct = await readNifti(p('ct.nii.gz'));
  const two = new Float32Array(ct.data.length * 2);
  two.set(ct.data);
  two.set(ct.data.map((v) => -v), ct.data.length);
  writeFileSync(p('nifti', 'four-d.nii.gz'), gzipSync(encodeProbabilityNifti(two, 2, ct.grid)));

  for (const c of dicomCases) writeSeries(p('dicom', c.folder), c.slices());
  writeSeries(p('dicom', 'good'), ctSlices(6));

  nnunetDataset(p('grid-dims'), { case_dims: DIMS_BAD });
  nnunetDataset(p('grid-affine'), { case_shift: SHIFT_BAD });
  nnunetDataset(p('grid-both'), { case_dims: DIMS_BAD, case_shift: SHIFT_BAD });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const predict = (input: string, out: string, extra: string[] = []) => cli(['predict', '--weights', MODEL, '--input', input, '--out', out, '--threads', '1', ...extra]);

describe('bad NIfTI volumes through mobileutr predict: one line, exit 1, nothing written', () => {
  let baselineRssMb = NaN;
  let baselineMs = NaN;

  it('the good CT is predicted (the inputs below differ from it only by their defect)', async () => {
    const out = p('out-good-ct');
    const r = await predict(p('ct.nii.gz'), out);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out)).toEqual(['ct.nii.gz']);
    baselineRssMb = r.rssMb;
    baselineMs = r.ms;
    expect(baselineRssMb).toBeGreaterThan(10);
  });

  it.each(niftiCases)('$name', async ({ file, pattern, args }) => {
    const out = p(`out-${file}-${args?.join('') ?? ''}`);
    const r = await predict(p('nifti', file), out, args);
    expectCleanFailure(r, pattern, p('nifti', file));
    expect(leftIn(out)).toEqual([]);
    if (file.startsWith('bomb')) {
      // refused in well under a few seconds beyond what the good CT takes (CLI startup, model, one volume), and
      // without inflating the bomb into memory (a 1 GiB buffer would show as ~1 GB of peak RSS)
      expect(r.ms, `${r.ms} ms vs ${baselineMs} ms for the good CT`).toBeLessThan(baselineMs + 3000);
      expect(r.rssMb, `peak RSS ${r.rssMb} MB vs ${baselineRssMb} MB for the good CT`).toBeLessThan(baselineRssMb + 64);
    }
  });
});

describe('bad DICOM series folders through mobileutr predict: one line naming the folder, exit 1, nothing written', () => {
  it('the good series is predicted', async () => {
    const out = p('out-good-dicom');
    const r = await predict(p('dicom', 'good'), out);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out)).toEqual(['good.nii.gz']);
  });

  it.each(dicomCases)('$name', async ({ folder, pattern }) => {
    const out = p(`out-dicom-${folder}`);
    const r = await predict(p('dicom', folder), out);
    expectCleanFailure(r, pattern, p('dicom', folder));
    expect(leftIn(out)).toEqual([]);
  });
});

describe('label and image grids that differ (nnU-Net dataset)', () => {
  const train = (data: string) => cli(['train', '--data', data, '--epochs', '1', '--size', '32', '--batch', '4', '--out', p(`run-${Math.random().toString(36).slice(2)}`)]);

  it('train: a label map with other dimensions', async () => {
    const bad = p('grid-dims', 'labelsTr', 'case_dims.nii.gz');
    expectCleanFailure(await train(p('grid-dims')), /case_dims\.nii\.gz: label is 16×17×6 voxels but its image is 16×16×6$/, bad);
  });

  it('train: a label map whose affine differs by 0.01 mm', async () => {
    const bad = p('grid-affine', 'labelsTr', 'case_shift.nii.gz');
    expectCleanFailure(await train(p('grid-affine')), /case_shift\.nii\.gz: label's affine differs from its image's by 0\.01 mm \(tolerance 0\.001 mm\): not the same grid$/, bad);
  });

  // the grid error comes after `train` has made the run folder but before any checkpoint: once the data is fixed the
  // same command starts the run over (a folder without a checkpoint has nothing to keep)
  it('train: once the bad label is fixed, the same command runs (the refused run left no dead run folder)', async () => {
    const root = nnunetDataset(p('grid-rerun'), { case_shift: SHIFT_BAD });
    const out = p('run-rerun');
    const args = ['train', '--data', root, '--epochs', '1', '--size', '32', '--batch', '4', '--out', out];
    expectCleanFailure(await cli(args), /not the same grid$/, join(root, 'labelsTr', 'case_shift.nii.gz'));
    writeSyntheticNifti(join(root, 'labelsTr', 'case_shift.nii.gz'), { dims: GRID }, label());
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('stopped before its first checkpoint: starting it over');
  });

  it('check: both problems in one pass, one line each, exit 1, no stack trace', async () => {
    const root = p('grid-both');
    const r = await cli(['check', root]);
    const what = `stderr: ${r.stderr}\nstdout: ${r.stdout}`;
    expect(r.signal, what).toBeNull();
    expect(r.code, what).toBe(1);
    expect(r.stdout + r.stderr, what).not.toMatch(STACK);
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('error: '));
    expect(errors, what).toEqual([
      `error: ${join(root, 'labelsTr', 'case_dims.nii.gz')}: label is 16×17×6 voxels but its image is 16×16×6`,
      `error: ${join(root, 'labelsTr', 'case_shift.nii.gz')}: label's affine differs from its image's by 0.01 mm (tolerance 0.001 mm): not the same grid`,
    ]);
    expect(r.stdout, what).toContain(`${root}: nnU-Net dataset, 6 cases, 6 label maps, 2 labels in dataset.json, 4 usable cases: 2 errors, 0 warnings, 0 notes`);
    expect(r.stderr, what).not.toMatch(/error:/);
  });
});
