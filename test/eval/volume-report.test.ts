/** The volume evaluation report (src/eval/volume/report.ts) and its overlays (overlay.ts). */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import type { Vec3 } from '../../src/data/volume/volume.ts';
import { classColour, drawCaseOverlay, overlaySlice, type OverlayVolumes } from '../../src/eval/volume/overlay.ts';
import { VolumeReport } from '../../src/eval/volume/report.ts';
import { scoreCase, type Protocol } from '../../src/eval/volume/score.ts';
import type { VolumeSummary } from '../../src/eval/volume/summary.ts';

/** Sets lo <= p < hi to `value` (x fastest). */
function box(dims: Vec3, lo: Vec3, hi: Vec3, value: number, into: Uint8Array): Uint8Array {
  for (let z = lo[2]; z < hi[2]; z++) for (let y = lo[1]; y < hi[1]; y++) for (let x = lo[0]; x < hi[0]; x++) into[x + dims[0] * (y + dims[1] * z)] = value;
  return into;
}

/** RFC 4180 fields (quotes, doubled quotes), enough for the report's CSV. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') row.push(field), (field = '');
    else if (ch === '\n') row.push(field), rows.push(row), (row = []), (field = '');
    else field += ch;
  }
  return rows;
}

const dims: Vec3 = [20, 16, 12];
const spacing: Vec3 = [0.8, 0.8, 2];
const CLASS_NAMES = ['background', 'kidney, left', 'liver <main>', 'spleen'];

function makeCase(id: string, shift: number) {
  const n = dims[0] * dims[1] * dims[2];
  const image = Uint8Array.from({ length: n }, (_, i) => (i * 7) % 200);
  const truth = new Uint8Array(n);
  const pred = new Uint8Array(n);
  box(dims, [2, 2, 2], [8, 8, 8], 1, truth);
  box(dims, [2 + shift, 2, 2], [8 + shift, 8, 8], 1, pred);
  box(dims, [10, 6, 3], [18, 14, 10], 2, truth);
  box(dims, [10, 6, 4], [18, 14, 10], 2, pred);
  // class 3 (spleen) in neither volume
  return { id, image, pred, truth, dims, spacing, classes: 4 };
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function writeReport(protocol: Protocol) {
  const dir = await mkdtemp(join(tmpdir(), 'mobileutr-volume-report-'));
  dirs.push(dir);
  const report = new VolumeReport(dir, { title: 'MobileUtr on <test>', protocol, classNames: CLASS_NAMES });
  const cases = [makeCase('case/001', 1), makeCase('case_001', 0)];
  const scores = cases.map((c) => scoreCase(c, protocol));
  for (let i = 0; i < cases.length; i++) await report.add(scores[i]!, cases[i]!);
  const summary = await report.write({ model: 'mobileutr', weights: 'w.safetensors' });
  return { dir, scores, summary };
}

describe("report, protocol 'mm'", async () => {
  const { dir, scores, summary } = await writeReport('mm');

  it('per_case.csv: one row per case and class, class names, HD95 column named with its unit', async () => {
    const rows = parseCsv(await readFile(join(dir, 'per_case.csv'), 'utf8'));
    expect(rows[0]).toEqual(['case', 'class', 'class_name', 'outcome', 'dice', 'iou', 'hd95_mm', 'assd_mm', 'voxels_true', 'voxels_pred']);
    expect(rows).toHaveLength(1 + 2 * 3);
    const byKey = new Map(rows.slice(1).map((r) => [`${r[0]}|${r[1]}`, r]));
    const kidney = byKey.get('case/001|1')!;
    expect(kidney[2]).toBe('kidney, left');
    expect(kidney[3]).toBe('scored');
    // 6x6x6 boxes shifted by one voxel: overlap 5x6x6 = 180, Dice 360/432, IoU 180/252
    expect(Number(kidney[4])).toBeCloseTo(360 / 432, 6);
    expect(Number(kidney[5])).toBeCloseTo(180 / 252, 6);
    expect(Number(kidney[6])).toBeCloseTo(scores[0]!.classes[0]!.hd95!, 6);
    expect(kidney.slice(8)).toEqual(['216', '216']);
    expect(byKey.get('case_001|1')!.slice(4, 7)).toEqual(['1', '1', '0']); // identical masks
    expect(byKey.get('case/001|2')![2]).toBe('liver <main>');
    expect(byKey.get('case/001|3')!.slice(2, 8)).toEqual(['spleen', 'absent', '1', '1', '0', '0']);
  });

  it('summary.json: protocol, unit, per-class mean/std/n, overall, the case ids, extra fields', async () => {
    const json = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as VolumeSummary & { model: string };
    expect(Object.keys(json).slice(0, 3)).toEqual(['model', 'weights', 'protocol']);
    expect(json).toMatchObject({ model: 'mobileutr', protocol: 'mm', distanceUnit: 'mm', cases: ['case/001', 'case_001'] });
    expect(json.classes.map((c) => c.name)).toEqual(['kidney, left', 'liver <main>', 'spleen']);
    expect(json.classes[0]!.dice.n).toBe(2);
    expect(json.classes[0]!.dice.mean).toBeCloseTo((360 / 432 + 1) / 2, 9);
    expect(json.classes[2]).toMatchObject({ absent: 2, dice: { mean: null, n: 0 } });
    expect(json.overall.dice.mean).toBeCloseTo(summary.overall.dice.mean!, 12);
    expect(json.overall.dice.n).toBe(2);
  });

  it('report.html: per-class table with HD95 (mm), class names escaped, legend colours, an axial and a coronal PNG per case', async () => {
    const html = await readFile(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<title>MobileUtr on &lt;test&gt;</title>');
    expect(html).toContain('<th>HD95 (mm)</th>');
    expect(html).not.toContain('voxels, TransUNet');
    expect(html).toContain('liver &lt;main&gt;');
    expect(html).not.toContain('liver <main>');
    for (const k of [1, 2, 3]) expect(html).toContain(`background:rgb(${classColour(k).join(',')})`);
    const mean = /<tr class="mean"><th>mean over classes<\/th><td>([\d.]+) ± /.exec(html);
    expect(Number(mean![1])).toBeCloseTo(summary.overall.dice.mean! * 100, 2);
    const images = [...html.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]!);
    expect(images).toEqual(['overlays/case_001_axial.png', 'overlays/case_001_coronal.png', 'overlays/case_001-2_axial.png', 'overlays/case_001-2_coronal.png']);
    for (const file of images) {
      const meta = await sharp(join(dir, file)).metadata();
      expect(meta.format).toBe('png');
      expect(meta.channels).toBe(3);
    }
    // the coronal picture: 20 x 0.8 mm wide, 12 x 2 mm high, square pixels, enlarged to at least 256 on its long side
    const coronal = await sharp(join(dir, images[1]!)).metadata();
    expect(coronal.height! / coronal.width!).toBeCloseTo(24 / 16, 1);
    expect(Math.max(coronal.width!, coronal.height!)).toBeGreaterThanOrEqual(256);
  });

  it('leaves no temporary files', async () => {
    const all = [...(await readdir(dir)), ...(await readdir(join(dir, 'overlays')))];
    expect(all.filter((f) => f.includes('.partial-'))).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual(['overlays', 'per_case.csv', 'report.html', 'summary.json']);
  });
});

describe("report, protocol 'transunet'", async () => {
  const { dir } = await writeReport('transunet');

  it('labels HD95 as voxels (TransUNet) everywhere', async () => {
    const csv = parseCsv(await readFile(join(dir, 'per_case.csv'), 'utf8'));
    expect(csv[0]).toContain('hd95_vox');
    expect(csv[0]).not.toContain('hd95_mm');
    expect(csv.find((r) => r[0] === 'case/001' && r[1] === '3')!.slice(3, 7)).toEqual(['absent', '0', '0', '0']);
    const json = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as VolumeSummary;
    expect(json).toMatchObject({ protocol: 'transunet', distanceUnit: 'voxels, TransUNet' });
    expect(json.classes[2]!.dice).toEqual({ mean: 0, std: 0, n: 2 });
    const html = await readFile(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<th>HD95 (voxels, TransUNet)</th>');
    expect(html).not.toContain('HD95 (mm)');
  });
});

describe('overlay pictures', () => {
  // 10 x 8 x 6 voxels of 1 mm; a prediction voxel at the anterior-right-superior corner and a truth box
  const d: Vec3 = [10, 8, 6];
  const n = d[0] * d[1] * d[2];
  const v: OverlayVolumes = { image: new Uint8Array(n).fill(100), pred: new Uint8Array(n), truth: new Uint8Array(n), dims: d, spacing: [1, 1, 1] };
  v.pred[9 + 10 * (7 + 8 * 5)] = 2; // i = 9 (right), j = 7 (anterior), k = 5 (superior)
  box(d, [2, 1, 1], [5, 3, 4], 1, v.truth); // k = 1..3: its median slice along k is 2, along j 1

  const pixel = (p: ReturnType<typeof drawCaseOverlay>, x: number, y: number) => [...p.rgb.subarray((y * p.width + x) * 3, (y * p.width + x) * 3 + 3)];
  const blend = (k: number) => classColour(k).map((c) => Math.round(100 * 0.55 + c * 0.45));

  it('picks the median slice of the truth, else of the prediction, else the middle', () => {
    expect(overlaySlice(v, 'axial')).toBe(2);
    expect(overlaySlice(v, 'coronal')).toBe(1);
    expect(overlaySlice({ ...v, truth: new Uint8Array(n) }, 'axial')).toBe(5);
    expect(overlaySlice({ ...v, truth: new Uint8Array(n), pred: new Uint8Array(n) }, 'coronal')).toBe(4);
  });

  it('axial: anterior up, the patient right on the left; coronal: superior up', () => {
    const axial = drawCaseOverlay(v, 'axial', 5);
    expect([axial.width, axial.height]).toEqual([260, 208]); // 10 x 8 mm enlarged 26 times (the first whole factor reaching 256)
    expect(pixel(axial, 0, 0)).toEqual(blend(2)); // i = 9, j = 7 is drawn top left
    expect(pixel(axial, axial.width - 1, axial.height - 1)).toEqual([100, 100, 100]);
    const coronal = drawCaseOverlay(v, 'coronal', 7);
    expect(pixel(coronal, 0, 0)).toEqual(blend(2)); // i = 9, k = 5 is drawn top left
  });

  it('outlines the truth in its class colour, one display pixel wide', () => {
    const axial = drawCaseOverlay(v, 'axial', 2);
    const scale = 26;
    // truth i = 2..4, j = 1..2: display columns (9 - 4)..(9 - 2) x 26, rows (7 - 2)..(7 - 1) x 26
    const [x0, x1, y0, y1] = [5 * scale, 8 * scale - 1, 5 * scale, 7 * scale - 1];
    expect(pixel(axial, x0, y0 + 10)).toEqual([...classColour(1)]);
    expect(pixel(axial, x1, y0 + 10)).toEqual([...classColour(1)]);
    expect(pixel(axial, x0 + 10, y1)).toEqual([...classColour(1)]);
    expect(pixel(axial, x0 + 1, y0 + 10)).toEqual([100, 100, 100]); // inside: no prediction here
    expect(pixel(axial, x0 - 1, y0 + 10)).toEqual([100, 100, 100]);
  });
});
