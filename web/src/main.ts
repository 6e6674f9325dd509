// The page: pick or drop a model and an image, run MobileUtr with onnxruntime-web, show the overlay, download the mask.
// Nothing is sent anywhere: files are read with the File API and inference runs in this page.
import { OverlayView } from '../../src/web/overlay.ts';
import {
  decodeImage,
  encodeGreyPng,
  ImageError,
  OnnxFormatError,
  WebSegmenter,
  type BrowserSegmentation,
  type ModelInfo,
  type RgbaImage,
  type WebRuntimeInfo,
} from '../../src/web/index.ts';
import { readFileAt, runDirectory } from '../../src/web/train/opfs-store.ts';
import type { PageState } from './page-state.ts';
import { isNiftiName, VolumeApp } from './volume-app.ts';

/** MobileUtr trained on BUSI (pretrained/README.md), copied into the build by vite.config.ts. */
const DEMO_MODEL = 'models/mobileutr-busi.onnx';
const params = new URLSearchParams(location.search);

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e as T;
}

const ui = {
  modelStatus: el<HTMLParagraphElement>('model-status'),
  modelFacts: el<HTMLElement>('model-facts'),
  factName: el('fact-name'),
  factInput: el('fact-input'),
  factClasses: el('fact-classes'),
  factRuntime: el('fact-runtime'),
  modelInput: el<HTMLInputElement>('model-input'),
  backend: el<HTMLSelectElement>('backend'),
  imageInput: el<HTMLInputElement>('image-input'),
  imageStatus: el<HTMLParagraphElement>('image-status'),
  opacity: el<HTMLInputElement>('opacity'),
  opacityValue: el<HTMLOutputElement>('opacity-value'),
  contour: el<HTMLInputElement>('contour'),
  statInference: el('stat-inference'),
  statTotal: el('stat-total'),
  statArea: el('stat-area'),
  statImage: el('stat-image'),
  download: el<HTMLButtonElement>('download'),
  stage: el('stage'),
  empty: el('empty'),
  busy: el('busy'),
  busyText: el('busy-text'),
  message: el<HTMLParagraphElement>('message'),
};

const view = new OverlayView(el<HTMLCanvasElement>('view'));
const page: PageState = { state: 'starting' };
window.mobileutr = page;

const volumeApp = new VolumeApp(el<HTMLCanvasElement>('volume-view'), page, {
  setState: (s) => setState(s),
  busy: (t) => busy(t),
  message: (t, kind) => setMessage(t, kind),
  fileStatus(text, kind) {
    ui.imageStatus.textContent = text;
    ui.imageStatus.title = text;
    ui.imageStatus.dataset.kind = kind;
  },
  showVolume: () => setMode('volume'),
});

/** The viewer shows either the 2-D image with its mask or a volume (volume-app.ts). */
function setMode(mode: 'image' | 'volume'): void {
  page.mode = mode;
  document.body.dataset.mode = mode;
  ui.empty.hidden = true;
}

let session: WebSegmenter | undefined;
let modelBytes: Uint8Array | undefined;
let modelSource = '';
let info: ModelInfo | undefined;
let image: RgbaImage | undefined;
let imageName = '';
let result: BrowserSegmentation | undefined;
/** Latest model load wins (a slow demo fetch must not replace a file the user picked meanwhile). */
let modelGeneration = 0;
let runGeneration = 0;
/** The segmentation in progress, awaited before its session is released. */
let inflight: Promise<unknown> | undefined;

function setState(state: PageState['state']): void {
  page.state = state;
  document.body.dataset.state = state;
}

function setModelStatus(text: string, kind: 'info' | 'ok' | 'warn' | 'error'): void {
  ui.modelStatus.textContent = text;
  ui.modelStatus.dataset.kind = kind;
}

function setMessage(text: string, kind: 'info' | 'error' = 'info'): void {
  ui.message.textContent = text;
  ui.message.dataset.kind = kind;
  if (kind === 'error') page.error = text;
}

function busy(text: string | undefined): void {
  ui.busy.hidden = text === undefined;
  ui.busyText.textContent = text ?? '';
}

function ms(v: number): string {
  return v < 10 ? `${v.toFixed(2)} ms` : v < 100 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`;
}

function runtimeLabel(r: WebRuntimeInfo): string {
  if (r.backend === 'webgpu') return 'WebGPU';
  return `WebAssembly SIMD · ${r.threads} thread${r.threads === 1 ? '' : 's'}`;
}

/** URL prefix of the ORT wasm files that the Vite config serves (dev) and copies (build) to ort/. */
function wasmPaths(): string {
  return new URL('ort/', document.baseURI).href;
}

function requestedBackend(): 'auto' | 'wasm' | 'webgpu' {
  const v = ui.backend.value;
  return v === 'wasm' || v === 'webgpu' ? v : 'auto';
}

async function loadModel(bytes: Uint8Array, source: string): Promise<void> {
  const generation = ++modelGeneration;
  setState('loading-model');
  busy('Loading model…');
  setModelStatus(`Loading ${source}…`, 'info');
  try {
    const threadsParam = Number(params.get('threads'));
    const next = await WebSegmenter.create(bytes, {
      backend: requestedBackend(),
      wasmPaths: wasmPaths(),
      ...(threadsParam > 0 ? { threads: threadsParam } : {}),
    });
    const parsed = next.info;
    // warm-up run so that the time shown for the first image is the steady-state inference time
    const { size, inChannels } = parsed;
    await next.backend.run({ [parsed.inputName]: { data: new Float32Array(inChannels * size * size), dims: [1, inChannels, size, size] } }, [parsed.outputName]);
    if (generation !== modelGeneration) {
      await next.release();
      return;
    }
    const previous = session;
    session = next;
    modelBytes = bytes;
    modelSource = source;
    info = parsed;
    await inflight?.catch(() => undefined);
    await volumeApp.setModel(next.backend, parsed, bytes, source);
    await previous?.release();
    page.model = { ...parsed, file: source, runtime: next.runtime };
    ui.factName.textContent = parsed.name;
    ui.factInput.textContent = `${parsed.inChannels} × ${parsed.size} × ${parsed.size}`;
    ui.factClasses.textContent = parsed.classes === 1 ? '1 (binary mask)' : String(parsed.classes);
    ui.factRuntime.textContent = runtimeLabel(next.runtime);
    ui.factRuntime.title = next.runtime.fallbackReason ?? '';
    ui.modelFacts.hidden = false;
    const mb = (bytes.length / 1e6).toFixed(1);
    setModelStatus(`${source} loaded (${mb} MB${parsed.source === 'metadata' ? '' : '; size read from the input shape'}).`, 'ok');
    if (requestedBackend() === 'webgpu' && next.runtime.backend !== 'webgpu') setMessage(`WebGPU unavailable, using WebAssembly: ${next.runtime.fallbackReason ?? ''}`);
    busy(undefined);
    setState('idle');
    if (volumeApp.active) setMessage('Model ready. Segment the current slice or the whole volume.');
    else if (image) await run();
    else setMessage('Model ready. Open or drop an image or a NIfTI volume.');
  } catch (e) {
    if (generation !== modelGeneration) return;
    busy(undefined);
    const why = e instanceof OnnxFormatError ? e.message : `ONNX Runtime could not load it (${(e as Error).message})`;
    const keeping = session && modelSource !== source ? ` ${modelSource} stays loaded.` : '';
    setModelStatus(`${source}: ${why}.${keeping}`, 'error');
    setMessage(`Could not load ${source}.`, 'error');
    setState('error');
  }
}

/** ?run=<name>: the model of a run trained on the training page (train.html), read from this browser's OPFS. */
async function loadRunModel(run: string): Promise<boolean> {
  const dir = await runDirectory(run).catch(() => undefined);
  const file = dir && (await readFileAt(dir, 'model.onnx'));
  if (!file) {
    setModelStatus(`No model of the training run "${run}" in this browser; loading the bundled BUSI model instead.`, 'warn');
    return false;
  }
  await loadModel(new Uint8Array(await file.arrayBuffer()), `${run} (trained in this browser)`);
  return true;
}

async function loadDemoModel(): Promise<void> {
  const run = params.get('run');
  if (run && (await loadRunModel(run))) return;
  if (params.get('demo') === '0') {
    setModelStatus('Choose an .onnx model file.', 'warn');
    setState('idle');
    return;
  }
  const generation = modelGeneration;
  try {
    const res = await fetch(DEMO_MODEL);
    const type = res.headers.get('content-type') ?? '';
    if (!res.ok || type.includes('text/html')) throw new Error('absent');
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (generation !== modelGeneration) return; // the user picked a model meanwhile
    await loadModel(bytes, 'MobileUtr trained on BUSI (bundled, breast ultrasound)');
  } catch {
    if (generation !== modelGeneration) return;
    setModelStatus('No bundled model here (models/mobileutr-busi.onnx). Choose an .onnx file exported by mobileutr.', 'warn');
    setState('idle');
  }
}

async function openImage(file: File): Promise<void> {
  try {
    busy('Decoding image…');
    const decoded = await decodeImage(file);
    await volumeApp.close();
    setMode('image');
    image = decoded;
    imageName = file.name;
    result = undefined;
    page.image = { name: file.name, width: decoded.width, height: decoded.height };
    page.result = undefined;
    ui.empty.hidden = true;
    ui.download.disabled = true;
    ui.statImage.textContent = `${decoded.width} × ${decoded.height}`;
    ui.imageStatus.textContent = `${file.name} (${decoded.width} × ${decoded.height})`;
    ui.imageStatus.title = file.name;
    ui.imageStatus.dataset.kind = 'ok';
    view.setImage(decoded);
    busy(undefined);
    if (session) await run();
    else setMessage('Image ready. Choose a model to segment it.');
  } catch (e) {
    busy(undefined);
    const why = e instanceof ImageError ? e.message : (e as Error).message;
    ui.imageStatus.textContent = `${file.name}: ${why}`;
    ui.imageStatus.dataset.kind = 'error';
    setMessage(`${file.name}: ${why}`, 'error');
    setState('error');
  }
}

async function run(): Promise<void> {
  if (!session || !info || !image) return;
  const generation = ++runGeneration;
  setState('running');
  busy('Segmenting…');
  setMessage('');
  // let the browser paint the busy badge before the (synchronous) wasm run takes the main thread
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  try {
    const pending = session.segment(image);
    inflight = pending;
    const out = await pending;
    if (generation !== runGeneration) return;
    result = out;
    page.result = { ...out, modelSource, imageName };
    view.setMask(out.mask, out.width, out.height, info.classes);
    const area = out.mask.reduce((n, v) => n + (v > 0 ? 1 : 0), 0);
    ui.statInference.textContent = ms(out.inferenceMs);
    ui.statTotal.textContent = ms(out.totalMs);
    ui.statArea.textContent = `${((100 * area) / out.mask.length).toFixed(1)} % (${area.toLocaleString('en')} px)`;
    ui.download.disabled = false;
    setMessage(
      out.resized
        ? `Resized ${out.width} × ${out.height} → ${info.size} × ${info.size} for the network; the mask is scaled back to the image.`
        : `The image is at the network's input size (${info.size} × ${info.size}); no resizing.`,
    );
    busy(undefined);
    setState('done');
  } catch (e) {
    busy(undefined);
    setMessage(`Inference failed: ${(e as Error).message}`, 'error');
    setState('error');
  }
}

async function downloadMask(): Promise<void> {
  if (!result) return;
  const blob = await encodeGreyPng(result.mask, result.width, result.height);
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `${imageName.replace(/\.[^.]+$/, '') || 'image'}-mask.png`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function openFile(file: File): Promise<void> {
  if (/\.onnx$/i.test(file.name)) await loadModel(new Uint8Array(await file.arrayBuffer()), file.name);
  else if (isNiftiName(file.name)) await volumeApp.open(file);
  else await openImage(file);
}

page.bench = async (n: number): Promise<number[]> => {
  if (!session || !info || !image) throw new Error('load a model and an image first');
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push((await session.segment(image)).inferenceMs);
  return times;
};

// wiring
const backendParam = params.get('backend');
if (backendParam === 'wasm' || backendParam === 'webgpu' || backendParam === 'auto') ui.backend.value = backendParam;

ui.modelInput.addEventListener('change', () => {
  const file = ui.modelInput.files?.[0];
  ui.modelInput.value = '';
  if (file) void file.arrayBuffer().then((b) => loadModel(new Uint8Array(b), file.name));
});
ui.imageInput.addEventListener('change', () => {
  const file = ui.imageInput.files?.[0];
  ui.imageInput.value = '';
  if (file) void (isNiftiName(file.name) ? volumeApp.open(file) : openImage(file));
});
ui.backend.addEventListener('change', () => {
  if (modelBytes) void loadModel(modelBytes, modelSource);
});
ui.opacity.addEventListener('input', () => {
  view.opacity = Number(ui.opacity.value) / 100;
  ui.opacityValue.textContent = `${ui.opacity.value}%`;
  view.render();
});
ui.contour.addEventListener('change', () => {
  view.showContour = ui.contour.checked;
  view.render();
});
ui.download.addEventListener('click', () => void downloadMask());

let dragDepth = 0;
window.addEventListener('dragenter', (e) => {
  e.preventDefault();
  dragDepth++;
  ui.stage.classList.add('dragging');
});
window.addEventListener('dragleave', () => {
  if (--dragDepth <= 0) ui.stage.classList.remove('dragging');
});
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', (e) => {
  e.preventDefault();
  dragDepth = 0;
  ui.stage.classList.remove('dragging');
  for (const file of Array.from(e.dataTransfer?.files ?? [])) void openFile(file);
});

view.opacity = Number(ui.opacity.value) / 100;
void loadDemoModel();
