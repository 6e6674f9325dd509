// Whether WebGPU trains correctly here: one small MobileUtr training step (32x32, batch 2) on WebGPU and on wasm, and
// the gradients compared. ORT Web 1.30 on Chromium's SwiftShader adapter gives gradients that differ from wasm's by
// orders of magnitude while its inference agrees to 1e-7 (test/browser/train.test.ts), so the trainer uses WebGPU
// only where this probe passes, and says why otherwise.
import { trainingStepFeeds } from '../../autodiff/step-feeds.ts';
import { buildTrainingGraph } from '../../autodiff/training-graph.ts';
import { createModel } from '../../models/model.ts';
import { sgd } from '../../optim/optimizers.ts';
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

/** The worst ||got - want|| / ||want|| over the named gradients; tensors whose `want` is ~0 (norm² ≤ 1e-20) are left out. */
export function worstGradientError(names: readonly string[], got: (name: string) => Float32Array, want: (name: string) => Float32Array): number {
  let worst = 0;
  for (const name of names) {
    const a = got(name);
    const b = want(name);
    let d = 0;
    let n = 0;
    for (let i = 0; i < b.length; i++) {
      d += (a[i]! - b[i]!) ** 2;
      n += b[i]! ** 2;
    }
    if (n > 1e-20) worst = Math.max(worst, Math.sqrt(d / n));
  }
  return worst;
}

export async function probeWebGpuTraining(o: WebSessionOptions & { optimization?: WebSessionOptions['optimization'] }): Promise<WebGpuProbe> {
  const model = createModel('mobileutr', { size: 32, seed: 7 });
  const graph = buildTrainingGraph(model, { batch: 2, optimizer: sgd({ momentum: 0.9, weightDecay: 1e-4 }), gradOutputs: true });
  const feeds = trainingStepFeeds(
    graph,
    model,
    { data: new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i * 0.173)), dims: [2, 3, 32, 32] },
    { data: new Float32Array(2 * 32 * 32).map((_, i) => ((i * 7) % 11 < 4 ? 1 : 0)), dims: [2, 1, 32, 32] },
  );
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
  const error = worstGradientError(graph.params.map((p) => p.input), (n) => gpu.out[`grad.${n}`]!.data, (n) => cpu.out[`grad.${n}`]!.data);
  return error <= WEBGPU_PROBE_TOLERANCE
    ? { ok: true, error, reason: `WebGPU gradients match wasm's (${error.toExponential(1)})` }
    : { ok: false, error, reason: `WebGPU gives wrong gradients here (${error.toExponential(1)} relative to wasm on a probe step), so training runs on WebAssembly; inference may still use WebGPU` };
}
