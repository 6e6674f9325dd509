// The training page: pick or drop a dataset folder, see its check, train in a Web Worker (train-worker.ts) with live
// progress and curves, pause / resume (also after a reload: the run lives in OPFS), evaluate the best epoch, download
// its weights and ONNX model, or open it in the segmentation page.
import type { DatasetFile } from '../../src/web/train/dataset.ts';
import { runDirectory, writeFileAt } from '../../src/web/train/opfs-store.ts';
import type { EpochRecord } from '../../src/train/curves.ts';
import type { WebRuntimeInfo } from '../../src/runtime/web.ts';
import { setOrtLogLevel, WebSession } from '../../src/runtime/web.ts';
import type { TensorMap } from '../../src/runtime/types.ts';
import type { Backend, CheckSummary, FromWorker, Overlay, ToWorker } from './train-protocol.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  dataInput: $<HTMLInputElement>('data-input'),
  dataStatus: $('data-status'),
  findings: $('findings'),
  model: $<HTMLSelectElement>('model'),
  size: $<HTMLSelectElement>('size'),
  epochs: $<HTMLInputElement>('epochs'),
  batch: $<HTMLInputElement>('batch'),
  device: $<HTMLSelectElement>('device'),
  start: $<HTMLButtonElement>('start'),
  pause: $<HTMLButtonElement>('pause'),
  resume: $<HTMLButtonElement>('resume'),
  runStatus: $('run-status'),
  deviceStatus: $('device-status'),
  best: $('best'),
  valScores: $('val-scores'),
  evaluate: $<HTMLButtonElement>('evaluate'),
  downloadWeights: $<HTMLButtonElement>('download-weights'),
  downloadOnnx: $<HTMLButtonElement>('download-onnx'),
  useModel: $<HTMLButtonElement>('use-model'),
  progress: $<HTMLProgressElement>('progress'),
  progressText: $('progress-text'),
  curves: $<HTMLCanvasElement>('curves'),
  overlays: $('overlays'),
  message: $('message'),
};

type State = 'idle' | 'checking' | 'ready' | 'copying' | 'training' | 'pausing' | 'paused' | 'finished' | 'evaluating' | 'error';

/** What tests and scripts read (window.mobileutrTrain). */
export interface TrainPageState {
  state: State;
  run?: string;
  check?: CheckSummary;
  runtime?: WebRuntimeInfo;
  steps: { step: number; loss: number; imagesPerS: number }[];
  epochs: EpochRecord[];
  best: { iou: number; epoch: number } | null;
  stopped?: { status: 'finished' | 'interrupted'; step: number; epoch: number };
  evaluated?: { iou: number; dice: number; f1: number; n: number };
  errors: string[];
  /**
   * Runs an ONNX model in this page on onnxruntime-web (tests: parity of graphs with onnxruntime-node). The model and
   * float32 tensors travel as base64 (little-endian bytes).
   */
  runOnnx(model: string, feeds: Record<string, { data: string; dims: number[] }>, backend?: Backend, optimization?: 'disabled' | 'basic' | 'extended' | 'all'): Promise<{ backend: string; fallbackReason?: string; outputs: Record<string, string> }>;
  /** The bytes of a run file (best.safetensors, model.onnx, ...), as the download buttons get them. */
  file(name: 'best.safetensors' | 'last.safetensors' | 'model.onnx' | 'metrics.jsonl' | 'config.json'): Promise<Uint8Array>;
}

declare global {
  interface Window {
    mobileutrTrain: TrainPageState;
  }
}

const params = new URLSearchParams(location.search);
if (params.get('ortLog') === 'verbose') setOrtLogLevel('verbose');
const wasmPaths = new URL('./ort/', location.href).href;
const worker = new Worker(new URL('./train-worker.ts', import.meta.url), { type: 'module' });
let files: DatasetFile[] = [];
let datasetJson: string | undefined;
let fileWaiter: ((bytes: Uint8Array) => void) | undefined;

function fromBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

const page: TrainPageState = {
  state: 'idle',
  steps: [],
  epochs: [],
  best: null,
  errors: [],
  async runOnnx(model, feeds, wanted = 'wasm', optimization = 'all') {
    const threads = Number(params.get('threads')) || undefined;
    const verbose = params.get('ortLog') === 'verbose';
    const session = await WebSession.create(fromBase64(model), { backend: wanted, wasmPaths, optimization, memoryPattern: false, ...(threads ? { threads } : {}), ...(verbose ? { logSeverityLevel: 0 as const } : {}) });
    try {
      const tensors: TensorMap = {};
      for (const [k, t] of Object.entries(feeds)) {
        const bytes = fromBase64(t.data);
        tensors[k] = { data: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), dims: t.dims };
      }
      const out = await session.run(tensors);
      return {
        backend: session.info.backend,
        ...(session.info.fallbackReason ? { fallbackReason: session.info.fallbackReason } : {}),
        outputs: Object.fromEntries(Object.entries(out).map(([k, t]) => [k, toBase64(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))])),
      };
    } finally {
      await session.release();
    }
  },
  file: (name) =>
    new Promise((resolve, reject) => {
      if (!page.run) return reject(new Error('no run'));
      fileWaiter = resolve;
      send({ type: 'file', name: page.run, file: name });
    }),
};
window.mobileutrTrain = page;

function send(m: ToWorker): void {
  worker.postMessage(m);
}

function setState(s: State): void {
  page.state = s;
  document.body.dataset.state = s;
  const hasData = files.length > 0 && page.check !== undefined && page.check.usable > 0;
  const running = s === 'training' || s === 'copying' || s === 'pausing';
  ui.start.disabled = running || !hasData || s === 'checking';
  ui.pause.disabled = !(s === 'training');
  ui.resume.disabled = !(page.run && (s === 'paused' || (s === 'ready' && page.stopped?.status === 'interrupted')));
  const hasBest = page.best !== null && !running;
  ui.evaluate.disabled = !hasBest;
  ui.downloadWeights.disabled = !hasBest;
  ui.downloadOnnx.disabled = !hasBest;
  ui.useModel.disabled = !hasBest;
}

function status(el: HTMLElement, text: string, kind: 'info' | 'ok' | 'warn' | 'error' = 'info'): void {
  el.textContent = text;
  el.dataset.kind = kind;
}

const backend = () => (params.get('backend') ?? ui.device.value) as Backend;
/** Steps between checkpoints (a reload loses at most these); ?checkpointEvery=1 for tests. */
const checkpointEvery = () => Number(params.get('checkpointEvery')) || 10;
const fmtEta = (s: number) => (Number.isFinite(s) ? (s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`) : '–');

// --- data: folder picker and drop ---

async function filesFromEntry(entry: FileSystemEntry, prefix: string, out: DatasetFile[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ path: `${prefix}${entry.name}`, file });
    return;
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    for (const child of batch) await filesFromEntry(child, `${prefix}${entry.name}/`, out);
  }
}

async function useFiles(picked: DatasetFile[]): Promise<void> {
  files = picked.filter((f) => !f.path.split('/').some((p) => p.startsWith('.')));
  const json = files.find((f) => /(^|\/)dataset\.json$/.test(f.path));
  datasetJson = json ? await json.file.text() : undefined;
  page.check = undefined;
  ui.findings.replaceChildren();
  status(ui.dataStatus, `Checking ${files.length} files…`);
  setState('checking');
  send({ type: 'check', files, ...(datasetJson !== undefined ? { datasetJson } : {}), size: Number(ui.size.value) });
}

ui.dataInput.addEventListener('change', () => {
  const list = [...(ui.dataInput.files ?? [])].map((file) => ({ path: file.webkitRelativePath || file.name, file }));
  void useFiles(list);
});
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => {
  e.preventDefault();
  const entries = [...(e.dataTransfer?.items ?? [])].map((i) => i.webkitGetAsEntry()).filter((x): x is FileSystemEntry => x !== null);
  void (async () => {
    const out: DatasetFile[] = [];
    for (const entry of entries) await filesFromEntry(entry, '', out);
    await useFiles(out);
  })();
});

function showCheck(c: CheckSummary): void {
  page.check = c;
  const kind = c.usable === 0 ? 'error' : c.counts.error > 0 ? 'warn' : 'ok';
  status(
    ui.dataStatus,
    `${c.layout === 'nnunet' ? 'nnU-Net layout' : 'images + masks'}: ${c.images} pairs, ${c.usable} usable, ${c.classes} class${c.classes > 1 ? 'es' : ''} (${c.classNames.join(', ')}); ` +
      `${c.counts.error} errors, ${c.counts.warning} warnings. Seeded split: ${c.train} train / ${c.val} validation.`,
    kind,
  );
  ui.findings.replaceChildren(
    ...c.findings.slice(0, 50).map((f) => {
      const li = document.createElement('li');
      li.dataset.severity = f.severity;
      li.textContent = `${f.severity}: ${f.path}: ${f.message}`;
      return li;
    }),
  );
  if (c.findings.length > 50) ui.findings.append(Object.assign(document.createElement('li'), { textContent: `… and ${c.findings.length - 50} more` }));
}

// --- training ---

ui.start.addEventListener('click', () => {
  const name = `run-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  page.run = name;
  page.steps = [];
  page.epochs = [];
  page.best = null;
  page.stopped = undefined;
  page.evaluated = undefined;
  ui.overlays.replaceChildren();
  localStorage.setItem('mobileutr-train-run', name);
  const maxSteps = Number(params.get('maxSteps')) || undefined;
  send({
    type: 'start',
    checkpointEvery: checkpointEvery(),
    name,
    files,
    ...(datasetJson !== undefined ? { datasetJson } : {}),
    settings: { model: ui.model.value, size: Number(ui.size.value), epochs: Number(ui.epochs.value), batch: Number(ui.batch.value) },
    backend: backend(),
    wasmPaths,
    ...(maxSteps ? { maxSteps } : {}),
  });
  status(ui.runStatus, 'Copying the data into the browser’s private storage…');
  setState('copying');
});

ui.pause.addEventListener('click', () => {
  send({ type: 'pause' });
  status(ui.runStatus, 'Pausing after this step (a checkpoint is saved)…');
  setState('pausing');
});

ui.resume.addEventListener('click', () => {
  if (!page.run) return;
  const maxSteps = Number(params.get('maxSteps')) || undefined;
  send({ type: 'resume', name: page.run, backend: backend(), wasmPaths, checkpointEvery: checkpointEvery(), ...(maxSteps ? { maxSteps } : {}) });
  status(ui.runStatus, `Resuming ${page.run}…`);
  setState('training');
});

ui.evaluate.addEventListener('click', () => {
  if (!page.run) return;
  send({ type: 'evaluate', name: page.run, backend: backend(), wasmPaths });
  status(ui.runStatus, 'Evaluating the best epoch on the validation split…');
  setState('evaluating');
});

async function download(name: 'best.safetensors' | 'model.onnx'): Promise<void> {
  const bytes = await page.file(name);
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([bytes as BlobPart]));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
ui.downloadWeights.addEventListener('click', () => void download('best.safetensors'));
ui.downloadOnnx.addEventListener('click', () => void download('model.onnx'));
ui.useModel.addEventListener('click', () => {
  void (async () => {
    if (!page.run) return;
    // the segmentation page reads the run's model.onnx (best epoch) from OPFS: nothing leaves the browser
    const dir = await runDirectory(page.run);
    if (dir) await writeFileAt(dir, 'model.onnx', await page.file('model.onnx'));
    location.href = `./index.html?run=${encodeURIComponent(page.run)}`;
  })();
});

// --- curves ---

function drawCurves(): void {
  const ctx = ui.curves.getContext('2d');
  if (!ctx) return;
  const { width: w, height: h } = ui.curves;
  const pad = { l: 48, r: 48, t: 20, b: 28 };
  ctx.clearRect(0, 0, w, h);
  ctx.font = '12px system-ui, sans-serif';
  ctx.strokeStyle = '#cbd5e1';
  ctx.strokeRect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
  const steps = page.steps;
  const totalSteps = Math.max(1, ...steps.map((s) => s.step), ...page.epochs.map((e) => e.step));
  const x = (step: number) => pad.l + ((w - pad.l - pad.r) * step) / totalSteps;
  // the loss axis spans the losses seen (with a margin): a curve from 1.2 to 1.1 must not look flat
  const losses = steps.map((s) => s.loss).filter(Number.isFinite);
  const lo = losses.length ? Math.min(...losses) : 0;
  const hi = losses.length ? Math.max(...losses) : 1;
  const margin = Math.max((hi - lo) * 0.1, 1e-3);
  const [minLoss, maxLoss] = [Math.max(0, lo - margin), hi + margin];
  const yLoss = (v: number) => pad.t + (h - pad.t - pad.b) * (1 - (v - minLoss) / (maxLoss - minLoss));
  const yPct = (v: number) => pad.t + (h - pad.t - pad.b) * (1 - v / 100);
  const line = (points: [number, number][], colour: string) => {
    if (points.length === 0) return;
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
    ctx.stroke();
    for (const [px, py] of points.length < 60 ? points : []) ctx.fillRect(px - 2, py - 2, 4, 4);
  };
  line(steps.map((s) => [x(s.step), yLoss(s.loss)]), '#94a3b8');
  const val = page.epochs.filter((e) => e.val_iou !== null);
  ctx.fillStyle = '#1f77b4';
  line(val.map((e) => [x(e.step), yPct(e.val_iou!)]), '#1f77b4');
  ctx.fillStyle = '#2ca02c';
  line(val.map((e) => [x(e.step), yPct(e.val_dice!)]), '#2ca02c');
  ctx.fillStyle = '#334155';
  ctx.fillText(`train loss (${minLoss.toFixed(3)}–${maxLoss.toFixed(3)})`, pad.l + 6, pad.t + 14);
  ctx.fillStyle = '#1f77b4';
  ctx.fillText('val IoU %', w - pad.r - 150, pad.t + 14);
  ctx.fillStyle = '#2ca02c';
  ctx.fillText('val Dice %', w - pad.r - 80, pad.t + 14);
  ctx.fillStyle = '#334155';
  ctx.fillText(`step ${totalSteps}`, w - pad.r - 50, h - 8);
}

function showOverlays(title: string, list: Overlay[]): void {
  const group = document.createElement('figure');
  group.className = 'overlay-group';
  group.append(Object.assign(document.createElement('figcaption'), { textContent: title }));
  for (const o of list) {
    const canvas = document.createElement('canvas');
    canvas.width = o.width;
    canvas.height = o.height;
    canvas.title = `${o.id}: IoU ${o.iou.toFixed(1)}, Dice ${o.dice.toFixed(1)}`;
    canvas.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(o.rgba), o.width, o.height), 0, 0);
    const cell = document.createElement('div');
    cell.append(canvas, Object.assign(document.createElement('span'), { textContent: `${o.id} · IoU ${o.iou.toFixed(1)}` }));
    group.append(cell);
  }
  ui.overlays.append(group);
}

// --- worker messages ---

worker.onmessage = (e: MessageEvent<FromWorker>) => {
  const m = e.data;
  switch (m.type) {
    case 'checked':
      showCheck(m.summary);
      setState('ready');
      break;
    case 'copying':
      ui.progress.max = m.total;
      ui.progress.value = m.done;
      ui.progressText.textContent = `copying ${m.done}/${m.total} files`;
      break;
    case 'runtime':
      page.runtime = m.info;
      ui.deviceStatus.textContent = `Device: ${m.info.backend === 'webgpu' ? 'WebGPU' : `WebAssembly (CPU), ${m.info.threads} thread${m.info.threads > 1 ? 's' : ''}`}${m.info.fallbackReason ? ` — WebGPU not used: ${m.info.fallbackReason}` : ''}`;
      setState('training');
      status(ui.runStatus, `Training ${page.run}…`);
      break;
    case 'step':
      page.steps.push({ step: m.step, loss: m.loss, imagesPerS: m.imagesPerS });
      ui.progress.max = m.epochs * m.batches;
      ui.progress.value = m.step;
      ui.progressText.textContent = `epoch ${m.epoch}/${m.epochs} · step ${m.step}/${m.epochs * m.batches} · ${m.imagesPerS.toFixed(1)} img/s · ETA ${fmtEta(m.etaS)} · loss ${m.loss.toFixed(4)} · lr ${m.lr.toExponential(2)}`;
      drawCurves();
      break;
    case 'epoch':
      page.epochs.push(m.record);
      page.best = m.best;
      if (m.best) ui.best.textContent = `${m.best.epoch} (IoU ${m.best.iou.toFixed(2)})`;
      if (m.record.val_iou !== null) ui.valScores.textContent = `IoU ${m.record.val_iou.toFixed(2)} · Dice ${m.record.val_dice!.toFixed(2)} (epoch ${m.record.epoch})`;
      drawCurves();
      break;
    case 'log':
      ui.message.textContent = m.line;
      break;
    case 'stopped':
      page.stopped = { status: m.status, step: m.step, epoch: m.epoch };
      page.best = m.best ?? page.best;
      status(ui.runStatus, m.status === 'finished' ? `Finished: ${m.epoch} epochs.` : `Paused at epoch ${m.epoch + 1}; the checkpoint is saved. Resume continues exactly.`, 'ok');
      setState(m.status === 'finished' ? 'finished' : 'paused');
      break;
    case 'evaluated':
      page.evaluated = { iou: m.iou, dice: m.dice, f1: m.f1, n: m.n };
      ui.valScores.textContent = `IoU ${m.iou.toFixed(2)} · Dice ${m.dice.toFixed(2)} · F1 ${m.f1.toFixed(2)} (${m.n} validation images, best epoch)`;
      ui.overlays.replaceChildren();
      showOverlays('Worst', m.worst);
      showOverlays('Best', m.best);
      status(ui.runStatus, 'Evaluated the best epoch.', 'ok');
      setState(page.stopped?.status === 'finished' ? 'finished' : 'paused');
      break;
    case 'file':
      fileWaiter?.(m.bytes);
      fileWaiter = undefined;
      break;
    case 'runs': {
      const name = localStorage.getItem('mobileutr-train-run');
      const run = m.runs.find((r) => r.name === name) ?? m.runs.filter((r) => !r.finished).at(-1);
      if (!run) break;
      page.run = run.name;
      page.best = run.best;
      page.stopped = { status: run.finished ? 'finished' : 'interrupted', step: run.step, epoch: run.epoch };
      if (run.best) ui.best.textContent = `${run.best.epoch} (IoU ${run.best.iou.toFixed(2)})`;
      status(ui.runStatus, run.finished ? `${run.name}: finished (${run.epochs} epochs).` : `${run.name}: stopped at step ${run.step} (epoch ${run.epoch + 1} of ${run.epochs}). Resume continues it exactly.`, run.finished ? 'ok' : 'warn');
      setState(run.finished ? 'finished' : 'paused');
      break;
    }
    case 'error':
      page.errors.push(m.message);
      status(ui.runStatus, m.message, 'error');
      setState('error');
      break;
  }
};
worker.onerror = (e) => {
  page.errors.push(e.message);
  status(ui.runStatus, `The training worker failed: ${e.message}`, 'error');
  setState('error');
};

setState('idle');
send({ type: 'runs' });
