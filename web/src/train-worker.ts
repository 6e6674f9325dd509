// The training Web Worker: checks, trains (src/web/train/run.ts), pauses, evaluates and hands out the run's files,
// so the page stays responsive. One run at a time; a pause or a closed tab leaves a checkpoint in OPFS.
import { drawOverlay } from '../../src/eval/overlay.ts';
import { parseSafetensors } from '../../src/io/safetensors-format.ts';
import { createModel } from '../../src/models/model.ts';
import { loadStateDict } from '../../src/models/state-dict.ts';
import { logitsToMask } from '../../src/pipeline/postprocess.ts';
import { collate } from '../../src/data/batcher.ts';
import { makeSplit } from '../../src/data/split-draw.ts';
import type { RunPosition } from '../../src/train/resume-format.ts';
import { checkBrowserDataset } from '../../src/web/train/check.ts';
import { indexDataset } from '../../src/web/train/dataset.ts';
import { listRuns, readFileAt, readText, runDirectory } from '../../src/web/train/opfs-store.ts';
import {
  browserConfig,
  browserSource,
  evaluateBrowserRun,
  openBrowserRun,
  resumeBrowserRun,
  startBrowserRun,
  webLogits,
  type BrowserRunOptions,
} from '../../src/web/train/run.ts';
import type { FromWorker, Overlay, ToWorker } from './train-protocol.ts';

const post = (m: FromWorker, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);
let controller: AbortController | undefined;

function runOptions(m: { backend: BrowserRunOptions['backend']; wasmPaths: string; checkpointEvery: number; maxSteps?: number }, epochs: () => number): BrowserRunOptions {
  let step = 0;
  let started = 0;
  controller = new AbortController();
  return {
    backend: m.backend,
    wasmPaths: m.wasmPaths,
    signal: controller.signal,
    checkpointEvery: m.checkpointEvery,
    // wasm threads: on a cross-origin isolated page, up to 4 (ONNX Runtime Web's own default)
    threads: Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)),
    ...(m.maxSteps ? { maxSteps: m.maxSteps } : {}),
    onRuntime: (info) => post({ type: 'runtime', info }),
    onStep: (s) => {
      step++;
      started ||= performance.now();
      const total = epochs() * s.batches;
      const done = (s.epoch - 1) * s.batches + s.batch;
      const etaS = step > 1 ? ((performance.now() - started) / 1000 / (step - 1)) * (total - done) : NaN;
      post({ type: 'step', epoch: s.epoch, epochs: epochs(), batch: s.batch, batches: s.batches, step: done, loss: s.loss, lr: s.lr, imagesPerS: s.imagesPerS, etaS });
    },
    onEpoch: (record, best) => post({ type: 'epoch', record, best }),
    onLog: (line) => post({ type: 'log', line }),
  };
}

/** The run's network with its best epoch's weights (best.safetensors in OPFS). */
async function bestModel(run: Awaited<ReturnType<typeof openBrowserRun>>) {
  const best = await readFileAt(run.dir, 'best.safetensors');
  if (!best) throw new Error('no best.safetensors yet: train at least one epoch');
  const { config } = run;
  const model = createModel(config.model, { size: config.size, inChannels: config.inChannels, classes: config.classes, seed: config.seed, lglKernel: config.lglKernel });
  loadStateDict(model, parseSafetensors(new Uint8Array(await best.arrayBuffer()), 'best.safetensors'), 'best.safetensors');
  return model;
}

async function overlays(name: string, backend: BrowserRunOptions['backend'], wasmPaths: string) {
  const run = await openBrowserRun(name);
  const { config } = run;
  const model = await bestModel(run);
  const evaluation = await evaluateBrowserRun(run, model, { backend, wasmPaths });
  const c0 = evaluation.perImage.filter((r) => r.cls === 0).sort((a, b) => a.scores.iou - b.scores.iou);
  const picks = [...c0.slice(0, 3), ...c0.slice(-3).reverse()];
  const source = browserSource(run.dataset, config, run.train, run.val);
  const runner = await webLogits(model, { backend, wasmPaths });
  const drawn: Overlay[] = [];
  try {
    for (const r of picks) {
      const sample = await source.batcher.sample(r.id);
      const logits = await runner.logits(collate([sample], config.inChannels).images, 1);
      const plane = config.size * config.size;
      const pred = config.classes === 1 ? logitsToMask(logits, 1, plane) : logitsToMask(logits, config.classes, plane).map((c) => (c === 1 ? 1 : 0));
      const rgb = drawOverlay({ pixels: sample.image, width: sample.size, height: sample.size, channels: sample.channels }, pred, sample.mask.subarray(0, plane));
      const rgba = new Uint8ClampedArray(plane * 4);
      for (let i = 0; i < plane; i++) rgba.set([rgb[i * 3]!, rgb[i * 3 + 1]!, rgb[i * 3 + 2]!, 255], i * 4);
      drawn.push({ id: r.id, iou: r.scores.iou, dice: r.scores.dice, width: sample.size, height: sample.size, rgba });
    }
  } finally {
    await runner.release();
  }
  const s = evaluation.summary.class0!;
  post({ type: 'evaluated', iou: s.iou!.mean, dice: s.dice!.mean, f1: s.f1!.mean, n: c0.length, worst: drawn.slice(0, 3), best: drawn.slice(3) });
}

async function runs() {
  const out: Extract<FromWorker, { type: 'runs' }>['runs'] = [];
  for (const name of await listRuns()) {
    const dir = (await runDirectory(name))!;
    const config = await readText(dir, 'config.json');
    if (!config) continue;
    const epochs = (JSON.parse(config) as { epochs: number }).epochs;
    const resume = await readFileAt(dir, 'resume.safetensors');
    let position: RunPosition | undefined;
    let step = 0;
    if (resume) {
      const meta = parseSafetensors(new Uint8Array(await resume.arrayBuffer()), 'resume').metadata;
      position = JSON.parse(meta.position ?? 'null') as RunPosition;
      step = (JSON.parse(meta.trainer ?? '{}') as { step?: number }).step ?? 0;
    }
    out.push({ name, epoch: position?.epoch ?? 0, epochs, step, finished: (position?.epoch ?? 0) >= epochs, best: position?.best ?? null });
  }
  post({ type: 'runs', runs: out });
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'check': {
      const dataset = indexDataset(m.files, m.datasetJson);
      const report = await checkBrowserDataset(dataset, { size: m.size });
      const split = dataset.ids.length >= 2 ? makeSplit(dataset.ids, browserConfig(dataset, {}).val, browserConfig(dataset, {}).seed) : { train: dataset.ids, val: [] };
      post({
        type: 'checked',
        summary: {
          layout: dataset.layout,
          root: dataset.root,
          images: report.images,
          classes: dataset.classes,
          classNames: dataset.classNames,
          usable: report.usable,
          findings: report.findings,
          counts: report.counts,
          train: split.train.length,
          val: split.val.length,
        },
      });
      return;
    }
    case 'start': {
      const epochs = m.settings.epochs ?? 30;
      const result = await startBrowserRun(m.name, m.files, m.settings, {
        ...runOptions(m, () => epochs),
        ...(m.datasetJson !== undefined ? { datasetJson: m.datasetJson } : {}),
        onCopy: (done, total) => post({ type: 'copying', done, total }),
      });
      post({ type: 'stopped', status: result.status, step: result.position.history.at(-1)?.step ?? 0, epoch: result.position.epoch, best: result.position.best });
      return;
    }
    case 'resume': {
      const run = await openBrowserRun(m.name);
      const result = await resumeBrowserRun(m.name, runOptions(m, () => run.config.epochs));
      post({ type: 'stopped', status: result.status, step: result.position.history.at(-1)?.step ?? 0, epoch: result.position.epoch, best: result.position.best });
      return;
    }
    case 'pause':
      controller?.abort();
      return;
    case 'evaluate':
      await overlays(m.name, m.backend, m.wasmPaths);
      return;
    case 'file': {
      const run = await openBrowserRun(m.name);
      if (m.file === 'model.onnx') {
        const bytes = (await bestModel(run)).toOnnx({ metadata: { trained_in: 'browser' } });
        post({ type: 'file', file: m.file, bytes }, [bytes.buffer]);
        return;
      }
      const file = await readFileAt(run.dir, m.file);
      if (!file) throw new Error(`${m.file} does not exist yet`);
      const bytes = new Uint8Array(await file.arrayBuffer());
      post({ type: 'file', file: m.file, bytes }, [bytes.buffer]);
      return;
    }
    case 'runs':
      await runs();
      return;
  }
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  handle(e.data).catch((err: Error) => post({ type: 'error', message: err.message }));
};
