// --device cpu|webgpu|auto on train, eval, predict and serve, through the checkout's CLI (test/support/bin.ts).
// Whether WebGPU works here is found without the CLI (a small MobileUtr session created directly on
// onnxruntime-node's WebGPU provider); each test asserts the behaviour for the case at hand, with a GPU adapter or
// without one (this machine: no Vulkan driver): WebGPU is used and says so, or --device webgpu fails with one line
// and --device auto falls back to the CPU, saying why.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel } from '../../src/models/model.ts';
import { saveWeights } from '../../src/models/weights.ts';
import { BIN } from '../support/bin.ts';

const IMAGE = new URL('../../samples/busi-mini/images/benign_001.png', import.meta.url).pathname;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const stderrLines = (r: ReturnType<typeof cli>) => r.stderr.split('\n').filter((l) => l.trim() !== '');
/** stderr without the progress bar's lines. */
const messages = (r: ReturnType<typeof cli>) => stderrLines(r).filter((l) => !/^predict \[/.test(l));

/** The one line users see for --device webgpu without a usable GPU. */
function expectWebGpuRefusal(r: ReturnType<typeof cli>) {
  expect(r.code, r.stderr).toBe(1);
  const lines = stderrLines(r);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^mobileutr: error: --device webgpu: onnxruntime-node's WebGPU execution provider \(Dawn on Vulkan\) could not start \(.+\); it needs a GPU with a Vulkan driver\. Use --device cpu/);
  expect(r.stdout).toBe('');
}

describe('--device', () => {
  let gpu: boolean;
  let dir: string;
  let weights: string;

  beforeAll(async () => {
    const model = createModel('mobileutr', { size: 32, seed: 7 });
    try {
      const s = await ort.InferenceSession.create(model.toOnnx(), { executionProviders: ['webgpu'] });
      await s.release();
      gpu = true;
    } catch {
      gpu = false;
    }
    console.log(`WebGPU session here: ${gpu ? 'yes' : 'no'}`);
    dir = mkdtempSync(join(tmpdir(), 'mobileutr-device-'));
    weights = join(dir, 'w.safetensors');
    await saveWeights(model, weights);
  });

  it('predict --device webgpu: fails with one line naming WebGPU and Vulkan, or predicts on WebGPU', () => {
    const out = join(dir, 'webgpu');
    const r = cli('predict', '--device', 'webgpu', '--weights', weights, '--input', IMAGE, '--out', out);
    if (gpu) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^device: webgpu$/m);
      expect(existsSync(join(out, 'benign_001.png'))).toBe(true);
    } else {
      expectWebGpuRefusal(r);
      expect(existsSync(out)).toBe(false); // refused before anything was written
    }
  });

  it('predict --device auto: uses WebGPU where it works, else the CPU, and says which (and why)', () => {
    const auto = join(dir, 'auto');
    const r = cli('predict', '--device', 'auto', '--weights', weights, '--input', IMAGE, '--out', auto);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote 1 masks/);
    if (gpu) expect(messages(r)).toEqual(['device: webgpu']);
    else {
      expect(messages(r)).toHaveLength(1);
      expect(messages(r)[0]).toMatch(/^device: cpu \(WebGPU unavailable: no GPU adapter: .+\)$/);
      // the CPU path is the default one: the same mask, and the default says nothing about the device
      const cpu = join(dir, 'cpu');
      const d = cli('predict', '--weights', weights, '--input', IMAGE, '--out', cpu);
      expect(d.code, d.stderr).toBe(0);
      expect(messages(d)).toEqual([]);
      expect(readFileSync(join(auto, 'benign_001.png')).equals(readFileSync(join(cpu, 'benign_001.png')))).toBe(true);
    }
  });

  // the device is resolved before the command reads anything: with WebGPU the command goes on (and fails on the
  // missing data), without it the device error comes first
  it.each([
    ['train', ['--data', '/nonexistent/data', '--out', 'RUN'], /\/nonexistent\/data/],
    ['eval', ['--data', '/nonexistent/data', '--out', 'RUN'], /\/nonexistent\/data/],
    ['serve', ['--weights', '/nonexistent/w.safetensors', '--port', '0'], /\/nonexistent\/w\.safetensors/],
  ])('%s --device webgpu: refused in one line, or run on WebGPU', (command, args, dataError) => {
    const r = cli(command, '--device', 'webgpu', ...args.map((a) => (a === 'RUN' ? join(dir, `${command}-run`) : a)));
    if (gpu) {
      expect(r.stderr).toMatch(/^device: webgpu$/m);
      expect(r.stderr).toMatch(dataError);
    } else expectWebGpuRefusal(r);
  });

  it.each(['train', 'eval', 'predict', 'serve'])('%s offers --device cpu|webgpu|auto and nothing else', (command) => {
    const r = cli(command, '--device', 'tpu');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/option '--device <device>' argument 'tpu' is invalid\. Allowed choices are cpu, webgpu, auto\./);
  });
});
