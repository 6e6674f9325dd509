// Whether WebGPU trains correctly here: one small MobileUtr training step (32x32, batch 2) on WebGPU and on wasm, and
// the gradients compared. ORT Web 1.30 on Chromium's SwiftShader adapter gives gradients that differ from wasm's by
// orders of magnitude while its inference agrees to 1e-7 (test/browser/train.test.ts), so the trainer uses WebGPU
// only where this probe passes, and says why otherwise.
import { buildTrainingGraph } from '../../autodiff/training-graph.ts';
import { createModel } from '../../models/model.ts';
import { sgd } from '../../optim/optimizers.ts';
import type { TensorMap } from '../../runtime/types.ts';
import { WebSession, type WebSessionOptions } from '../../runtime/web.ts';

/** Gradients may differ by float noise and the odd ReLU near-tie (~1e-2 in the 2-norm); a broken kernel gives ≥ 1. */
export const WEBGPU_PROBE_TOLERANCE = 0.05;

export interface WebGpuProbe {
  /** True when a WebGPU session ran the step and its gradients match wasm's. */
  ok: boolean;
  /** Worst gradient error, ||webgpu - wasm|| / ||wasm|| (absent when WebGPU did not run). */
  error?: number;
  reason: string;
}

const count = (shape: readonly unknown[]) => (shape as number[]).reduce((a, d) => a * d, 1);

export async function probeWebGpuTraining(o: WebSessionOptions & { optimization?: WebSessionOptions['optimization'] }): Promise<WebGpuProbe> {
  const model = createModel('mobileutr', { size: 32, seed: 7 });
  const graph = buildTrainingGraph(model, { batch: 2, optimizer: sgd({ momentum: 0.9, weightDecay: 1e-4 }), gradOutputs: true });
  const feeds: TensorMap = {
    [graph.image]: { data: new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i * 0.173)), dims: [2, 3, 32, 32] },
    [graph.target]: { data: new Float32Array(2 * 32 * 32).map((_, i) => ((i * 7) % 11 < 4 ? 1 : 0)), dims: [2, 1, 32, 32] },
    'optim.lr': { data: Float32Array.of(0.01), dims: [] },
  };
  for (const p of [...graph.params, ...graph.buffers]) feeds[p.input] = { data: model.weights.get(p.input)!, dims: p.shape };
  for (const s of graph.state) feeds[s.input] = { data: new Float32Array(count(s.shape)), dims: s.shape };
  for (const r of graph.randomInputs) feeds[r.input] = { data: new Float32Array(count(r.shape)).fill(1), dims: r.shape };
  const run = async (backend: 'webgpu' | 'wasm') => {
    const session = await WebSession.create(graph.onnx, { ...o, backend, memoryPattern: false });
    try {
      return { info: session.info, out: await session.run(feeds) };
    } finally {
      await session.release();
    }
  };
  let gpu: Awaited<ReturnType<typeof run>>;
  try {
    gpu = await run('webgpu');
  } catch (e) {
    return { ok: false, reason: `WebGPU failed on a training step (${(e as Error).message.split('\n')[0]})` };
  }
  if (gpu.info.backend !== 'webgpu') return { ok: false, reason: gpu.info.fallbackReason ?? 'no WebGPU adapter' };
  const cpu = await run('wasm');
  let error = 0;
  for (const p of graph.params) {
    const a = gpu.out[`grad.${p.input}`]!.data;
    const b = cpu.out[`grad.${p.input}`]!.data;
    let d = 0;
    let n = 0;
    for (let i = 0; i < b.length; i++) {
      d += (a[i]! - b[i]!) ** 2;
      n += b[i]! ** 2;
    }
    if (n > 1e-20) error = Math.max(error, Math.sqrt(d / n));
  }
  return error <= WEBGPU_PROBE_TOLERANCE
    ? { ok: true, error, reason: `WebGPU gradients match wasm's (${error.toExponential(1)})` }
    : { ok: false, error, reason: `WebGPU gives wrong gradients here (${error.toExponential(1)} relative to wasm on a probe step), so training runs on WebAssembly; inference may still use WebGPU` };
}
