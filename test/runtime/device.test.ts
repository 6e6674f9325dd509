// --device: the pure parts (execution providers, the translation of ORT's WebGPU failure into one line), and the
// real behaviour on this machine. Whether WebGPU works here is found independently of the code under test (a
// session of a small MobileUtr created directly on onnxruntime-node's WebGPU provider), and each case asserts what
// must happen with a GPU adapter or without one: nothing is skipped.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { createModel } from '../../src/models/model.ts';
import {
  dawnBackend,
  executionProviders,
  probeWebGpu,
  resolveDevice,
  sessionError,
  webgpuFailureReason,
  webgpuUnavailableMessage,
} from '../../src/runtime/device.ts';
import { NodeSession } from '../../src/runtime/session.ts';
import type { SessionOptions } from '../../src/runtime/types.ts';
import { WorkerPool } from '../../src/server/worker-pool.ts';
import { SAMPLE_DATA } from '../../src/cli/train.ts';
import { PAPER_DEFAULTS } from '../../src/train/config.ts';
import { runTraining } from '../../src/train/loop.ts';
import { createTrainer } from '../../src/train/trainer.ts';

/** ORT 1.30's message on a Linux machine without a Vulkan driver (onnxruntime-node, linux-x64). */
const ORT_NO_ADAPTER =
  '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters\n';
/** What Dawn writes on stderr there when the Vulkan loader is missing. */
const DAWN_NO_LOADER =
  "Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file: No such file or directory\n    at operator() (/build/Release/_deps/dawn-src/src/dawn/native/vulkan/BackendVk.cpp:368)\n";

describe('device: pure parts', () => {
  it('maps a device to execution providers: the CPU as before, WebGPU with the CPU as fallback', () => {
    expect(executionProviders('cpu')).toBeUndefined();
    expect(executionProviders()).toBeUndefined();
    expect(executionProviders('webgpu')).toEqual(['webgpu', 'cpu']);
  });

  it("names Dawn's GPU API per platform", () => {
    expect(dawnBackend('linux')).toBe('Vulkan');
    expect(dawnBackend('win32')).toBe('D3D12');
    expect(dawnBackend('darwin')).toBe('Metal');
  });

  it("reduces ORT's adapter failure (and Dawn's loader warning) to a short reason", () => {
    expect(webgpuFailureReason(ORT_NO_ADAPTER)).toBe('no GPU adapter: No supported adapters');
    expect(webgpuFailureReason(ORT_NO_ADAPTER, DAWN_NO_LOADER)).toBe('no GPU adapter: No supported adapters; the Vulkan loader libvulkan.so.1 is not installed');
    expect(webgpuFailureReason('/src/webgpu_context.cc:150 f() x was false. Failed to get a WebGPU device: Device lost.')).toBe('no GPU device: Device lost');
    // other failures: ORT's source location and failed condition go, the message stays
    expect(webgpuFailureReason('/onnxruntime_src/a/b.cc:12 void f() ok was false. The WebGPU thing broke\nmore')).toBe('The WebGPU thing broke');
    expect(webgpuFailureReason('this onnxruntime-node build has no WebGPU execution provider (darwin-x64)')).toBe(
      'this onnxruntime-node build has no WebGPU execution provider (darwin-x64)',
    );
    expect(webgpuFailureReason('x'.repeat(300))).toHaveLength(160);
  });

  it('the --device webgpu error is one line: what was tried, what is missing, the alternative', () => {
    const m = webgpuUnavailableMessage('no GPU adapter: No supported adapters', 'linux');
    expect(m).not.toMatch(/\n/);
    expect(m).toBe(
      "--device webgpu: onnxruntime-node's WebGPU execution provider (Dawn on Vulkan) could not start (no GPU adapter: No supported adapters); it needs a GPU with a Vulkan driver. Use --device cpu, or --device auto to use WebGPU only where it works",
    );
    expect(webgpuUnavailableMessage('r', 'darwin')).toMatch(/Dawn on Metal.*GPU with a Metal driver/);
  });

  it('translates session-creation errors in one place: WebGPU start-up failures become that UserError, nothing else', () => {
    const translated = sessionError(new Error(ORT_NO_ADAPTER), 'webgpu');
    expect(translated).toBeInstanceOf(UserError);
    expect((translated as UserError).message).toBe(webgpuUnavailableMessage('no GPU adapter: No supported adapters'));
    // the CPU's errors, and model errors on WebGPU, stay what they are
    const cpu = new Error(ORT_NO_ADAPTER);
    expect(sessionError(cpu, 'cpu')).toBe(cpu);
    expect(sessionError(cpu, undefined)).toBe(cpu);
    const model = new Error('Load model from buffer failed: Protobuf parsing failed.');
    expect(sessionError(model, 'webgpu')).toBe(model);
    const user = new UserError('already one line');
    expect(sessionError(user, 'webgpu')).toBe(user);
  });

  it('cpu resolves without probing and says nothing', async () => {
    expect(await resolveDevice('cpu')).toEqual({ device: 'cpu' });
  });

  it('passes the device to the training backend in its session options', async () => {
    const seen: SessionOptions[] = [];
    const stop = new Error('backend called');
    const trainer = createTrainer(createModel('mobileutr', { size: 32 }), {
      device: 'webgpu',
      threads: 2,
      backend: async (_bytes, o) => {
        seen.push(o);
        throw stop;
      },
    });
    const images = { data: new Float32Array(2 * 3 * 32 * 32), dims: [2, 3, 32, 32] };
    const targets = { data: new Float32Array(2 * 32 * 32), dims: [2, 1, 32, 32] };
    await expect(trainer.step(images, targets, 0.01)).rejects.toBe(stop);
    expect(seen[0]).toMatchObject({ device: 'webgpu', threads: 2, memoryPattern: false });
    await trainer.release();
  });
});

describe('device: on this machine', () => {
  const model = createModel('mobileutr', { size: 32, seed: 3 });
  const input = { data: new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i * 0.1)), dims: [2, 3, 32, 32] };
  /** Found without the code under test: can onnxruntime-node create a WebGPU session of a MobileUtr here? */
  let gpu: boolean;
  let why = '';

  beforeAll(async () => {
    try {
      const s = await ort.InferenceSession.create(model.toOnnx(), { executionProviders: ['webgpu'] });
      await s.release();
      gpu = true;
    } catch (e) {
      gpu = false;
      why = (e as Error).message;
    }
    console.log(`WebGPU session here: ${gpu ? 'yes' : `no (${why.trim().split('\n')[0]})`}`);
  });

  it('probes once per process and agrees with a direct attempt', async () => {
    const first = probeWebGpu();
    expect(probeWebGpu()).toBe(first); // cached: one probe per process
    const p = await first;
    expect(p.available).toBe(gpu);
    if (gpu) expect(p.reason).toBeUndefined();
    // the same reason as the direct attempt's error, plus what Dawn said on the probe's stderr, if anything
    else expect(p.reason!.startsWith(webgpuFailureReason(why))).toBe(true);
  });

  it('auto picks WebGPU where a session can be created, else the CPU with the reason', async () => {
    const r = await resolveDevice('auto');
    if (gpu) expect(r).toEqual({ device: 'webgpu', note: 'device: webgpu' });
    else {
      expect(r.device).toBe('cpu');
      expect(r.note).toMatch(/^device: cpu \(WebGPU unavailable: no GPU adapter: .+\)$/);
    }
  });

  it('webgpu resolves where it works and fails with the one-line UserError where it does not', async () => {
    const r = resolveDevice('webgpu');
    if (gpu) expect(await r).toEqual({ device: 'webgpu', note: 'device: webgpu' });
    else {
      const e = await r.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).message).toBe(webgpuUnavailableMessage((await probeWebGpu()).reason!));
      expect((e as UserError).message).toMatch(/WebGPU.*Vulkan.*--device cpu/);
    }
  });

  it('NodeSession on webgpu runs the network (as the CPU does) or fails with the UserError', async () => {
    const created = NodeSession.create(model.toOnnx(), { device: 'webgpu', threads: 1 });
    if (gpu) {
      const session = await created;
      const cpu = await NodeSession.create(model.toOnnx());
      const [a, b] = [(await session.run({ input })).logits!, (await cpu.run({ input })).logits!];
      expect(a.dims).toEqual([2, 1, 32, 32]);
      let worst = 0;
      for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i]! - b.data[i]!));
      expect(worst).toBeLessThan(1e-2);
      await Promise.all([session.release(), cpu.release()]);
    } else {
      const e = await created.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).message).toMatch(/^--device webgpu: onnxruntime-node's WebGPU execution provider \(Dawn on Vulkan\) could not start \(no GPU adapter/);
    }
  });

  it('the trainer takes a step on webgpu or fails with the UserError', async () => {
    const trainer = createTrainer(createModel('mobileutr', { size: 32, seed: 3 }), { device: 'webgpu' });
    const targets = { data: new Float32Array(2 * 32 * 32).map((_, i) => (i % 7 < 3 ? 1 : 0)), dims: [2, 1, 32, 32] };
    const step = trainer.step(input, targets, 0.01);
    if (gpu) expect(Number.isFinite((await step).loss)).toBe(true);
    else await expect(step).rejects.toThrow(/could not start \(no GPU adapter.*--device cpu/);
    await trainer.release();
  });

  it('a training run (training graph, then validation) runs on webgpu or fails with the UserError', async () => {
    const config = {
      ...PAPER_DEFAULTS,
      data: SAMPLE_DATA,
      trainSplit: join(SAMPLE_DATA, 'train.txt'),
      valSplit: join(SAMPLE_DATA, 'val.txt'),
      classes: 1,
      size: 32,
      batch: 8,
      epochs: 1,
      threads: 1,
    };
    const run = runTraining(mkdtempSync(join(tmpdir(), 'mobileutr-device-')), config, { device: 'webgpu' });
    if (gpu) {
      const r = await run;
      expect(r.status).toBe('finished');
      expect(r.position.history[0]!.val_iou).toBeGreaterThanOrEqual(0);
    } else await expect(run).rejects.toThrow(/^--device webgpu: .*could not start \(no GPU adapter/);
  });

  it("the server's inference workers get the device", async () => {
    const pool = WorkerPool.create(model, { workers: 1, session: { device: 'webgpu' } });
    if (gpu) {
      const p = await pool;
      const logits = await p.logits(input.data.slice(0, 3 * 32 * 32), 1);
      expect(logits).toHaveLength(32 * 32);
      await p.close();
    } else {
      const e = await pool.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(UserError); // one line from the CLI, not an internal error
      expect((e as UserError).message).toMatch(/^--device webgpu: .*WebGPU.*Vulkan/);
    }
  });
});
