// What the comparison table says about each model besides accuracy: size, compute and speed, measured here.
import { graphMacs } from '../analysis/complexity.ts';
import { createModel } from '../models/model.ts';
import { NodeSession } from '../runtime/session.ts';
import { Rng } from '../util/rng.ts';

export interface ModelCost {
  model: string;
  params: number;
  /** Conv and linear multiply-accumulates per image at the table's size: what the papers call FLOPs. */
  macs: number;
  /** onnxruntime-node, batch 1, median ms. */
  cpuMs: number;
  /** onnxruntime-web (wasm) in headless Chromium, batch 1, median ms; null when not measured. */
  browserMs: number | null;
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** A fixed, seeded input image batch of one. */
export function latencyInput(inChannels: number, size: number): { data: Float32Array; dims: number[] } {
  const rng = new Rng(7);
  return { data: Float32Array.from({ length: inChannels * size * size }, () => rng.normal()), dims: [1, inChannels, size, size] };
}

/** Parameters and MACs of `model` built at `size` (the architecture decides them; weights do not). */
export function modelSize(model: string, size: number): { params: number; macs: number; onnx: Uint8Array } {
  const m = createModel(model, { size });
  return { params: m.parameterCount, macs: graphMacs(m.graph.builder).weights, onnx: m.toOnnx() };
}

/** Median latency of onnxruntime-node at batch 1 over `runs` runs after `warmup` untimed ones. */
export async function cpuLatencyMs(onnx: Uint8Array, size: number, threads: number, runs: number, warmup = 3): Promise<number> {
  const session = await NodeSession.create(onnx, { threads });
  try {
    const input = latencyInput(3, size);
    for (let i = 0; i < warmup; i++) await session.run({ input });
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await session.run({ input });
      times.push(performance.now() - t);
    }
    return median(times);
  } finally {
    await session.release();
  }
}
