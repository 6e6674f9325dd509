import { METRIC_NAMES } from './metrics.ts';
import type { Evaluation, ImageResult } from './evaluate.ts';

const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : '');

/** per_image.csv: one row per image and class. */
export function perImageCsv(e: Evaluation): string {
  const rows = e.perImage.map((r) => [r.id, r.cls, ...METRIC_NAMES.map((m) => fmt(r.scores[m]))].join(','));
  return `${['id', 'class', ...METRIC_NAMES].join(',')}\n${rows.join('\n')}\n`;
}

/** Mean ± std lines for the terminal, percentages like the paper's tables (HD95 in pixels). */
export function summaryLines(e: Evaluation): string[] {
  const lines: string[] = [];
  for (const [cls, metrics] of Object.entries(e.summary)) {
    const parts = METRIC_NAMES.map((m) => {
      const s = metrics[m]!;
      const scale = m === 'hd95' ? 1 : 100;
      return `${m.toUpperCase()} ${(s.mean * scale).toFixed(2)} ± ${(s.std * scale).toFixed(2)}${s.skipped ? ` (${s.skipped} undefined)` : ''}`;
    });
    lines.push(`${Object.keys(e.summary).length > 1 ? `${cls}: ` : ''}${parts.join(' | ')}`);
  }
  return lines;
}

export interface ReportCase {
  result: ImageResult;
  /** PNG of the overlay (prediction filled red, truth outlined green). */
  png: Uint8Array;
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A self-contained HTML report: summary table and overlays of the worst and best cases. */
export function htmlReport(title: string, e: Evaluation, worst: ReportCase[], best: ReportCase[]): string {
  const summaryRows = Object.entries(e.summary)
    .map(
      ([cls, metrics]) =>
        `<tr><th>${escape(cls)}</th>${METRIC_NAMES.map((m) => {
          const s = metrics[m]!;
          const scale = m === 'hd95' ? 1 : 100;
          return `<td>${(s.mean * scale).toFixed(2)} ± ${(s.std * scale).toFixed(2)}</td>`;
        }).join('')}</tr>`,
    )
    .join('');
  const gallery = (cases: ReportCase[]) =>
    cases
      .map(
        (c) =>
          `<figure><img src="data:image/png;base64,${Buffer.from(c.png).toString('base64')}" alt="${escape(c.result.id)}"><figcaption>${escape(c.result.id)} — IoU ${(c.result.scores.iou * 100).toFixed(1)}, Dice ${(c.result.scores.dice * 100).toFixed(1)}</figcaption></figure>`,
      )
      .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
.gallery{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}img{width:256px;image-rendering:pixelated;border:1px solid #ddd}
figcaption{font-size:12px;color:#555}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
</style></head><body>
<h1>${escape(title)}</h1>
<p>${new Set(e.perImage.map((r) => r.id)).size} images. Metrics as in the original work (percent; HD95 in pixels), mean ± std over images.</p>
<table><tr><th></th>${METRIC_NAMES.map((m) => `<th>${m.toUpperCase()}</th>`).join('')}</tr>${summaryRows}</table>
<p class="legend">Overlays:<span style="background:#ff4040"></span>prediction<span style="background:#40ff60"></span>ground-truth outline</p>
<h2>Worst cases (lowest IoU)</h2><div class="gallery">${gallery(worst)}</div>
<h2>Best cases (highest IoU)</h2><div class="gallery">${gallery(best)}</div>
</body></html>
`;
}
