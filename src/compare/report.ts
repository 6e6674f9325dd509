// The paper-style table of a comparison (markdown, CSV, HTML) and its figure: IoU against parameters, bubble
// area proportional to MACs, as in the MobileUtr paper.
import { mean, sampleStd as std } from '../util/stats.ts';
import type { ModelCost } from './measure.ts';

export interface SplitScore {
  split: number;
  iou: number;
  f1: number;
  epoch: number;
}

export interface TableRow {
  dataset: string;
  cost: ModelCost;
  scores: SplitScore[];
}

const pts = (v: number) => (100 * v).toFixed(2);
const pm = (xs: readonly number[]) => (xs.length ? `${pts(mean(xs))} ± ${pts(std(xs))}` : '-');
const millions = (n: number) => (n / 1e6).toFixed(2);
const giga = (n: number) => (n / 1e9).toFixed(2);
const ms = (v: number | null) => (v === null ? 'n/a' : v.toFixed(1));

export const COLUMNS = ['dataset', 'model', 'params (M)', 'MACs (G)', 'CPU ms', 'browser ms', 'IoU', 'F1', 'splits'] as const;

function cells(r: TableRow): string[] {
  const iou = r.scores.map((s) => s.iou);
  const f1 = r.scores.map((s) => s.f1);
  return [r.dataset, r.cost.model, millions(r.cost.params), giga(r.cost.macs), ms(r.cost.cpuMs), ms(r.cost.browserMs), pm(iou), pm(f1), r.scores.map((s) => s.split).join(',')];
}

export function markdownTable(rows: readonly TableRow[]): string {
  const lines = [`| ${COLUMNS.join(' | ')} |`, `| ${COLUMNS.map(() => '---').join(' | ')} |`];
  for (const r of rows) lines.push(`| ${cells(r).join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}

const csvCell = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** One row per model and dataset with numbers in plain units (fractions, not points), for spreadsheets. */
export function csvTable(rows: readonly TableRow[]): string {
  const head = ['dataset', 'model', 'params', 'macs', 'cpu_ms', 'browser_ms', 'iou_mean', 'iou_std', 'f1_mean', 'f1_std', 'splits', 'iou_per_split', 'f1_per_split'];
  const body = rows.map((r) => {
    const iou = r.scores.map((s) => s.iou);
    const f1 = r.scores.map((s) => s.f1);
    return [r.dataset, r.cost.model, String(r.cost.params), String(r.cost.macs), r.cost.cpuMs.toFixed(3), r.cost.browserMs?.toFixed(3) ?? '', mean(iou).toFixed(6), std(iou).toFixed(6), mean(f1).toFixed(6), std(f1).toFixed(6), String(r.scores.length), iou.map((v) => v.toFixed(6)).join(' '), f1.map((v) => v.toFixed(6)).join(' ')]
      .map(csvCell)
      .join(',');
  });
  return `${[head.join(','), ...body].join('\n')}\n`;
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** IoU (mean over splits) against parameters on a log axis; bubble area ∝ MACs; one SVG per dataset. */
export function bubblePlotSvg(dataset: string, rows: readonly TableRow[]): string {
  const W = 640;
  const H = 420;
  const m = { left: 64, right: 24, top: 40, bottom: 52 };
  const points = rows.map((r) => ({ model: r.cost.model, x: Math.log10(r.cost.params), y: 100 * mean(r.scores.map((s) => s.iou)), macs: r.cost.macs }));
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [x0, x1] = [Math.floor(Math.min(...xs) * 2) / 2 - 0.25, Math.ceil(Math.max(...xs) * 2) / 2 + 0.25];
  const [y0, y1] = [Math.floor(Math.min(...ys) / 5) * 5 - 2, Math.ceil(Math.max(...ys) / 5) * 5 + 2];
  const px = (x: number) => m.left + ((x - x0) / (x1 - x0)) * (W - m.left - m.right);
  const py = (y: number) => H - m.bottom - ((y - y0) / (y1 - y0)) * (H - m.top - m.bottom);
  const maxMacs = Math.max(...points.map((p) => p.macs));
  const radius = (macs: number) => 6 + 34 * Math.sqrt(macs / maxMacs);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${escapeHtml(dataset)}: IoU vs parameters (bubble area ∝ MACs)</text>`,
    `<line x1="${m.left}" y1="${H - m.bottom}" x2="${W - m.right}" y2="${H - m.bottom}" stroke="black"/>`,
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${H - m.bottom}" stroke="black"/>`,
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">parameters (millions, log scale)</text>`,
    `<text x="16" y="${H / 2}" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">validation IoU (%), mean over splits</text>`,
  ];
  for (let e = Math.ceil(x0 * 2) / 2; e <= x1; e += 0.5) {
    const label = String(Number((10 ** e / 1e6).toPrecision(2)));
    parts.push(`<line x1="${px(e)}" y1="${H - m.bottom}" x2="${px(e)}" y2="${H - m.bottom + 5}" stroke="black"/><text x="${px(e)}" y="${H - m.bottom + 18}" text-anchor="middle">${label}</text>`);
  }
  for (let y = Math.ceil(y0); y <= y1; y += 1) {
    if (y % 5 !== 0) continue;
    parts.push(`<line x1="${m.left - 5}" y1="${py(y)}" x2="${m.left}" y2="${py(y)}" stroke="black"/><text x="${m.left - 8}" y="${py(y) + 4}" text-anchor="end">${y}</text>`);
    parts.push(`<line x1="${m.left}" y1="${py(y)}" x2="${W - m.right}" y2="${py(y)}" stroke="#ddd"/>`);
  }
  points.forEach((p, i) => {
    const c = PALETTE[i % PALETTE.length]!;
    parts.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="${radius(p.macs).toFixed(1)}" fill="${c}" fill-opacity="0.45" stroke="${c}"/>`);
    // above the bubble, or below it where a large bubble near the top would push the label into the title
    const above = py(p.y) - radius(p.macs) - 4;
    const labelY = above >= m.top + 4 ? above : py(p.y) + radius(p.macs) + 14;
    parts.push(`<text x="${px(p.x).toFixed(1)}" y="${labelY.toFixed(1)}" text-anchor="middle">${escapeHtml(p.model)} (${(p.macs / 1e9).toFixed(2)} G)</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export function htmlReport(title: string, about: string, rows: readonly TableRow[], plots: ReadonlyMap<string, string>): string {
  const head = COLUMNS.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = rows.map((r) => `<tr>${cells(r).map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  const figures = [...plots].map(([dataset, svg]) => `<figure>${svg}<figcaption>${escapeHtml(dataset)}</figcaption></figure>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,td:nth-child(2),th{text-align:left}</style>
</head><body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(about)}</p>
<table><thead><tr>${head}</tr></thead><tbody>
${body}
</tbody></table>
${figures}
</body></html>
`;
}
