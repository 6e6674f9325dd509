import sharp from 'sharp';

export interface EpochRecord {
  epoch: number;
  step: number;
  lr: number;
  train_loss: number;
  grad_norm: number;
  val_iou: number | null;
  val_dice: number | null;
  val_f1: number | null;
  images_per_s: number;
  seconds: number;
  skipped_batches: number;
}

interface Series {
  label: string;
  colour: string;
  points: [number, number][];
}

function panel(x0: number, title: string, series: Series[], yFixed?: [number, number]): string {
  const w = 420;
  const h = 260;
  const pad = { l: 48, r: 12, t: 28, b: 32 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return '';
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [xMin, xMax] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  let [yMin, yMax] = yFixed ?? [Math.min(...ys), Math.max(...ys)];
  if (yMax - yMin < 1e-9) [yMin, yMax] = [yMin - 0.5, yMax + 0.5];
  const px = (x: number) => x0 + pad.l + ((x - xMin) / (xMax - xMin)) * (w - pad.l - pad.r);
  const py = (y: number) => pad.t + (1 - (y - yMin) / (yMax - yMin)) * (h - pad.t - pad.b);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => yMin + f * (yMax - yMin));
  const grid = ticks
    .map((t) => `<line x1="${px(xMin)}" x2="${px(xMax)}" y1="${py(t)}" y2="${py(t)}" stroke="#e5e5e5"/><text x="${x0 + pad.l - 6}" y="${py(t) + 4}" text-anchor="end">${t.toFixed(yMax - yMin < 0.1 ? 3 : 2)}</text>`)
    .join('');
  const lines = series
    .map((s) => {
      const path = s.points.map((p, i) => `${i ? 'L' : 'M'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join('');
      const dots = s.points.length < 60 ? s.points.map((p) => `<circle cx="${px(p[0])}" cy="${py(p[1])}" r="2.5" fill="${s.colour}"/>`).join('') : '';
      return `<path d="${path}" fill="none" stroke="${s.colour}" stroke-width="2"/>${dots}`;
    })
    .join('');
  const legend = series.map((s, i) => `<rect x="${x0 + pad.l + 8 + i * 90}" y="${h - 12}" width="10" height="10" fill="${s.colour}"/><text x="${x0 + pad.l + 22 + i * 90}" y="${h - 3}">${s.label}</text>`).join('');
  return `<text x="${x0 + w / 2}" y="18" text-anchor="middle" font-weight="bold">${title}</text>${grid}${lines}${legend}<text x="${px(xMax)}" y="${h - 18}" text-anchor="end">epoch ${xMax}</text>`;
}

/** The training-curves picture: loss per epoch, and validation IoU / Dice per epoch. */
export function curvesSvg(history: readonly EpochRecord[]): string {
  const loss: Series = { label: 'train loss', colour: '#d62728', points: history.map((r) => [r.epoch, r.train_loss]) };
  const valid = history.filter((r) => r.val_iou !== null);
  const iou: Series = { label: 'val IoU', colour: '#1f77b4', points: valid.map((r) => [r.epoch, r.val_iou!]) };
  const dice: Series = { label: 'val Dice', colour: '#2ca02c', points: valid.map((r) => [r.epoch, r.val_dice!]) };
  return `<svg xmlns="http://www.w3.org/2000/svg" width="860" height="260" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>${panel(0, 'Training loss', [loss])}${panel(430, 'Validation', [iou, dice], [0, 1])}</svg>`;
}

export async function writeCurvesPng(path: string, history: readonly EpochRecord[]): Promise<void> {
  await sharp(Buffer.from(curvesSvg(history))).png().toFile(path);
}
