/**
 * The volume evaluation report in an output folder: `per_case.csv` (one row per case and class), `summary.json`
 * (protocol, distance unit, per-class and overall mean/std/n) and `report.html` (per-class table, then each case's
 * scores and its axial and coronal overlays in `overlays/`, under a legend of class names and colours). Every file
 * is written under a temporary name and renamed, so an interrupted run leaves no half-written file.
 *
 * Cases are added one at a time and only their scores are kept, so a report over many volumes holds one volume in
 * memory at a time.
 *
 * @example
 *   const report = new VolumeReport('eval-out', { title: 'MobileUtr on Synapse', protocol: 'mm', classNames });
 *   for (const c of cases) await report.add(scoreCase(c, 'mm'), { ...c, image });
 *   const summary = await report.write();
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsProblem } from '../../cli/run.ts';
import { encodePng } from '../../data/image.ts';
import { UserError } from '../../errors.ts';
import { classColour, cssColour, drawCaseOverlay, OVERLAY_VIEWS, type OverlayView, type OverlayVolumes } from './overlay.ts';
import type { CaseScore, ClassScore, Protocol } from './score.ts';
import { summarize, type Stat, type VolumeSummary } from './summary.ts';

export interface VolumeReportOptions {
  title: string;
  protocol: Protocol;
  /** Name of each class, background (0) first. */
  classNames: readonly string[];
}

export interface CasePictures {
  score: CaseScore;
  /** Overlay files relative to the report folder, with the slice each shows. */
  pictures: { view: OverlayView; file: string; slice: number }[];
}

export class VolumeReport {
  private readonly cases: CasePictures[] = [];
  private readonly names = new Set<string>();

  constructor(
    readonly outDir: string,
    readonly options: VolumeReportOptions,
  ) {}

  /** Records a case's scores and writes its overlays now (the volumes are not kept). */
  async add(score: CaseScore, volumes: OverlayVolumes): Promise<void> {
    if (score.protocol !== this.options.protocol) throw new Error(`case ${score.id} was scored with protocol ${score.protocol}, the report is ${this.options.protocol}`);
    const dir = join(this.outDir, 'overlays');
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw new UserError(`${dir}: cannot create the output folder (${fsProblem(e)})`);
    }
    const stem = this.fileStem(score.id);
    const pictures: CasePictures['pictures'] = [];
    for (const view of OVERLAY_VIEWS) {
      const pic = drawCaseOverlay(volumes, view);
      const file = `overlays/${stem}_${view}.png`;
      await writeAtomic(join(this.outDir, file), await encodePng(pic.rgb, pic.width, pic.height, 3));
      pictures.push({ view, file, slice: pic.slice });
    }
    this.cases.push({ score, pictures });
  }

  /** Writes per_case.csv, summary.json (with `extra` fields first) and report.html; returns the summary. */
  async write(extra: Record<string, unknown> = {}): Promise<VolumeSummary> {
    const { protocol, classNames, title } = this.options;
    const scores = this.cases.map((c) => c.score);
    const summary = summarize(scores, classNames, protocol);
    await writeAtomic(join(this.outDir, 'per_case.csv'), perCaseCsv(scores, classNames, protocol));
    await writeAtomic(join(this.outDir, 'summary.json'), `${JSON.stringify({ ...extra, ...summary }, null, 2)}\n`);
    await writeAtomic(join(this.outDir, 'report.html'), volumeReportHtml(title, summary, this.cases));
    return summary;
  }

  /** A file-name-safe stem for a case id, unique within the report. */
  private fileStem(id: string): string {
    const base = id.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || 'case';
    let stem = base;
    for (let n = 2; this.names.has(stem); n++) stem = `${base}-${n}`;
    this.names.add(stem);
    return stem;
  }
}

/** Column header of HD95 and ASSD for a protocol: their unit is part of the name. */
export const distanceColumn = (metric: 'hd95' | 'assd', protocol: Protocol) => `${metric}_${protocol === 'mm' ? 'mm' : 'vox'}`;

const num = (v: number | null) => (v === null || !Number.isFinite(v) ? '' : String(Number(v.toFixed(6))));
const csvField = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** per_case.csv: case, class, class_name, outcome, dice, iou, hd95_mm|hd95_vox, assd_mm|assd_vox, voxels_true, voxels_pred. */
export function perCaseCsv(cases: readonly CaseScore[], classNames: readonly string[], protocol: Protocol): string {
  const header = ['case', 'class', 'class_name', 'outcome', 'dice', 'iou', distanceColumn('hd95', protocol), distanceColumn('assd', protocol), 'voxels_true', 'voxels_pred'];
  const rows = cases.flatMap((c) =>
    c.classes.map((r) =>
      [csvField(c.id), r.cls, csvField(classNames[r.cls] ?? `class ${r.cls}`), r.outcome, num(r.dice), num(r.iou), num(r.hd95), num(r.assd), r.truthVoxels, r.predVoxels].join(','),
    ),
  );
  return `${header.join(',')}\n${rows.map((r) => `${r}\n`).join('')}`;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const pct = (v: number | null) => (v === null ? '—' : (v * 100).toFixed(2));
const dist = (v: number | null) => (v === null ? '—' : v.toFixed(2));
const meanStd = (s: Stat, f: (v: number | null) => string) => (s.mean === null ? '—' : `${f(s.mean)} ± ${f(s.std)}`);

/** Table headers with units: HD95 (mm) or HD95 (voxels, TransUNet). */
export const distanceHeader = (metric: 'HD95' | 'ASSD', s: Pick<VolumeSummary, 'distanceUnit'>) => `${metric} (${s.distanceUnit})`;

const PROTOCOL_TEXT: Record<Protocol, string> = {
  mm: 'Dice and IoU from voxel counts; HD95 and ASSD from 3-D surface distances with the voxel spacing (medpy <code>hd95</code> with <code>voxelspacing</code>). A class in neither volume of a case is left out of the means (counted as absent); a class in only one of them scores Dice 0 and has no HD95, which leaves it out of the HD95 mean (counted as missed or spurious).',
  transunet:
    "TransUNet's <code>calculate_metric_percase</code>: both masks non-empty: medpy Dice and HD95 in voxels (spacing ignored); prediction only: (1, 0); otherwise (0, 0). Every case counts in the means. For comparison with published Synapse tables; HD95 in millimetres needs <code>--protocol mm</code>.",
};

function legend(s: VolumeSummary): string {
  const items = s.classes.map((c) => `<span class="swatch" style="background:${cssColour(classColour(c.cls))}"></span>${escape(c.name)}`).join(' ');
  return `<p class="legend">${items}<br><small>fill: prediction · outline: ground truth · axial: anterior up, coronal: superior up, patient's right on the left</small></p>`;
}

function classTable(s: VolumeSummary): string {
  const hd = distanceHeader('HD95', s);
  const asd = distanceHeader('ASSD', s);
  const head = `<tr><th>class</th><th>Dice (%)</th><th>IoU (%)</th><th>${escape(hd)}</th><th>${escape(asd)}</th><th>cases in the Dice mean</th><th>in the HD95 mean</th><th>absent</th><th>missed</th><th>spurious</th></tr>`;
  const rows = s.classes
    .map(
      (c) =>
        `<tr><th><span class="swatch" style="background:${cssColour(classColour(c.cls))}"></span>${escape(c.name)}</th><td>${meanStd(c.dice, pct)}</td><td>${meanStd(c.iou, pct)}</td><td>${meanStd(c.hd95, dist)}</td><td>${meanStd(c.assd, dist)}</td><td>${c.dice.n}</td><td>${c.hd95.n}</td><td>${c.absent}</td><td>${c.missed}</td><td>${c.spurious}</td></tr>`,
    )
    .join('');
  const o = s.overall;
  const mean = `<tr class="mean"><th>mean over classes</th><td>${meanStd(o.dice, pct)}</td><td>${meanStd(o.iou, pct)}</td><td>${meanStd(o.hd95, dist)}</td><td>${meanStd(o.assd, dist)}</td><td colspan="5"></td></tr>`;
  return `<table>${head}${rows}${mean}</table>`;
}

function caseSection(c: CasePictures, s: VolumeSummary): string {
  const name = (r: ClassScore) => s.classes.find((k) => k.cls === r.cls)?.name ?? `class ${r.cls}`;
  const rows = c.score.classes
    .map((r) => `<tr><th>${escape(name(r))}</th><td>${pct(r.dice)}</td><td>${dist(r.hd95)}</td><td>${r.outcome === 'scored' ? '' : r.outcome}</td></tr>`)
    .join('');
  const table = `<table><tr><th></th><th>Dice (%)</th><th>${escape(distanceHeader('HD95', s))}</th><th></th></tr>${rows}</table>`;
  const figures = c.pictures
    .map((p) => `<figure><img src="${escape(p.file)}" alt="${escape(`${c.score.id} ${p.view}`)}"><figcaption>${p.view}, slice ${p.slice}</figcaption></figure>`)
    .join('');
  return `<section><h3>${escape(c.score.id)}</h3><div class="case">${table}${figures}</div></section>`;
}

/** A self-contained HTML page but for the overlay PNGs it links (paths relative to the page). */
export function volumeReportHtml(title: string, s: VolumeSummary, cases: readonly CasePictures[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:0 0 1rem}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child{text-align:left}
tr.mean{font-weight:600}.case{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}figure{margin:0}
img{max-width:420px;image-rendering:pixelated;border:1px solid #ddd}figcaption{font-size:12px;color:#555}
.swatch{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:middle;border:1px solid #999}
.legend{position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #ddd}
</style></head><body>
<h1>${escape(title)}</h1>
<p>${s.cases.length} case${s.cases.length === 1 ? '' : 's'}, protocol <b>${s.protocol}</b>: ${PROTOCOL_TEXT[s.protocol]} Mean ± std over cases per class; the last row is the mean over classes (± std over cases of each case's class mean).</p>
${classTable(s)}
<h2>Cases</h2>
${legend(s)}
${cases.map((c) => caseSection(c, s)).join('\n')}
</body></html>
`;
}

/** Writes a file whole or not at all (temporary name, then rename); a failure is a UserError naming the file. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.partial-${process.pid}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new UserError(`${path}: cannot write (${fsProblem(e)})`);
  }
}
