/**
 * Where onnxruntime-node runs the networks: its CPU execution provider, or its WebGPU execution provider (bundled in
 * onnxruntime-node 1.30+ for linux-x64; Dawn, which drives the GPU through Vulkan on Linux, D3D12 on Windows, Metal
 * on macOS). This module does not import ONNX Runtime: whether WebGPU works is probed in a child process, once per
 * process, because Dawn writes its own warnings straight to the process's stderr (e.g. "Warning: Couldn't load
 * Vulkan: libvulkan.so.1: ...") and a broken GPU driver may crash the process that tries it.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { UserError } from '../errors.ts';
import { encodeModel } from '../ir/onnx.ts';

/** A device sessions are created on. */
export type Device = 'cpu' | 'webgpu';
/** What a user may ask for: a device, or `auto` (WebGPU when a session can be created on it, else the CPU). */
export type DeviceChoice = Device | 'auto';
export const DEVICE_CHOICES: readonly DeviceChoice[] = ['cpu', 'webgpu', 'auto'];

/**
 * ONNX Runtime execution providers for a device; undefined for the CPU (ORT's default: the CPU provider alone, as
 * sessions were always created). WebGPU lists the CPU after it: nodes the WebGPU provider has no kernel for run on
 * the CPU provider. ORT would add the CPU provider as that fallback anyway (unless session.disable_cpu_ep_fallback
 * is set); it is listed to say so.
 */
export function executionProviders(device: Device = 'cpu'): ('webgpu' | 'cpu')[] | undefined {
  return device === 'webgpu' ? ['webgpu', 'cpu'] : undefined;
}

/** The GPU API Dawn (WebGPU in onnxruntime-node) uses on a platform. */
export function dawnBackend(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? 'D3D12' : platform === 'darwin' ? 'Metal' : 'Vulkan';
}

/**
 * The reason, in a few words, why a WebGPU session could not be created, from ORT's error message and what Dawn
 * wrote on stderr (`nativeLog`, when known). ORT 1.30 on a machine without a Vulkan driver says
 * `/onnxruntime_src/.../webgpu_context.cc:136 ...<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success
 * was false. Failed to get a WebGPU adapter: No supported adapters`.
 */
export function webgpuFailureReason(message: string, nativeLog = ''): string {
  let reason: string;
  const adapter = /Failed to get a WebGPU (adapter|device)\b:?\s*([^\n]*)/i.exec(message);
  if (adapter) reason = `no GPU ${adapter[1]!.toLowerCase()}${adapter[2]!.trim() ? `: ${adapter[2]!.trim().replace(/\.$/, '')}` : ''}`;
  else {
    // drop ORT's source location and failed condition: "<file>:<line> <function> <condition> was false. <message>"
    const first = message.trim().split('\n')[0] ?? '';
    const afterCheck = first.split(/ was false\.\s*/).pop()!;
    reason = afterCheck.replace(/^\S+\.(cc|cpp|h):\d+\s+/, '').trim() || 'unknown error';
    if (reason.length > 160) reason = `${reason.slice(0, 157)}...`;
  }
  const loader = /Couldn't load Vulkan: (\S+?):? cannot open shared object file/.exec(nativeLog);
  if (loader) reason += `; the Vulkan loader ${loader[1]} is not installed`;
  return reason;
}

/** The one-line error of `--device webgpu` where WebGPU cannot run (`reason` from webgpuFailureReason). */
export function webgpuUnavailableMessage(reason: string, platform: NodeJS.Platform = process.platform): string {
  const api = dawnBackend(platform);
  return (
    `--device webgpu: onnxruntime-node's WebGPU execution provider (Dawn on ${api}) could not start (${reason}); ` +
    `it needs a GPU with a ${api} driver. Use --device cpu, or --device auto to use WebGPU only where it works`
  );
}

/** Session-creation failures that mean "no usable WebGPU here", as opposed to a problem with the model. */
const WEBGPU_STARTUP = /webgpu|adapter|dawn|vulkan|wgpu/i;

/**
 * The one place session-creation errors are translated: on `webgpu`, a failure to start WebGPU (no adapter, no
 * device, provider missing from the build) becomes a one-line UserError; anything else is returned unchanged.
 */
export function sessionError(e: unknown, device: Device | undefined, nativeLog = ''): unknown {
  if (device !== 'webgpu' || e instanceof UserError) return e;
  const message = (e as Error)?.message ?? String(e);
  if (!WEBGPU_STARTUP.test(message)) return e;
  return new UserError(webgpuUnavailableMessage(webgpuFailureReason(message, nativeLog)));
}

export interface WebGpuProbe {
  available: boolean;
  /** Why not (webgpuFailureReason's words), when not available. */
  reason?: string;
}

/** A one-node graph (y = x + x, [1, 4]) for the probe. */
function probeModel(): Uint8Array {
  const x = { name: 'x', shape: [1, 4], dtype: 'float32' as const };
  const y = { name: 'y', shape: [1, 4], dtype: 'float32' as const };
  return encodeModel({ name: 'webgpu-probe', nodes: [{ name: 'add', opType: 'Add', inputs: ['x', 'x'], outputs: ['y'], attrs: {} }], inputs: [x], outputs: [y], initializers: [] });
}

// CommonJS on purpose: runs with `node -e`, needs no loader, and onnxruntime-node is CommonJS.
const PROBE_SCRIPT = `
const [ortPath, model] = process.argv.slice(1);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n', () => process.exit(0));
(async () => {
  const ort = require(ortPath);
  if (!ort.listSupportedBackends().some((b) => b.name === 'webgpu'))
    return say({ ok: false, message: 'this onnxruntime-node build has no WebGPU execution provider (' + process.platform + '-' + process.arch + ')' });
  const session = await ort.InferenceSession.create(Buffer.from(model, 'base64'), { executionProviders: ['webgpu'] });
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [1, 4]) });
  const y = Array.from(out.y.data);
  await session.release();
  if (y.join() !== '2,4,6,8') return say({ ok: false, message: 'WebGPU computed x + x wrongly: [' + y.join(', ') + ']' });
  say({ ok: true });
})().catch((e) => say({ ok: false, message: String((e && e.message) || e) }));
`;

/** Seconds the probe may take: a first WebGPU session compiles shaders and starts the driver. */
const PROBE_TIMEOUT_MS = 60_000;

function runProbe(): Promise<WebGpuProbe> {
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  const model = Buffer.from(probeModel()).toString('base64');
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', PROBE_SCRIPT, ortPath, model], { timeout: PROBE_TIMEOUT_MS, encoding: 'utf8', maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        const r = JSON.parse(line) as { ok: boolean; message?: string };
        resolve(r.ok ? { available: true } : { available: false, reason: webgpuFailureReason(r.message ?? '', stderr) });
        return;
      }
      const e = error as (Error & { killed?: boolean; signal?: string; code?: number | string }) | null;
      const why = e?.killed ? `no answer within ${PROBE_TIMEOUT_MS / 1000} s` : e?.signal ? `the probe process died (${e.signal})` : `the probe process failed (exit ${e?.code ?? '?'})`;
      const detail = stderr.trim().split('\n').filter(Boolean).pop();
      resolve({ available: false, reason: `${why}${detail ? `: ${detail.slice(0, 160)}` : ''}` });
    });
  });
}

let probe: Promise<WebGpuProbe> | undefined;

/**
 * Whether onnxruntime-node can create and run a WebGPU session here: tried once per process (in a child process:
 * Dawn's stderr warnings and driver crashes stay there), the answer cached.
 */
export function probeWebGpu(): Promise<WebGpuProbe> {
  probe ??= runProbe();
  return probe;
}

export interface ResolvedDevice {
  device: Device;
  /** What to tell the user for `webgpu` and `auto` (`device: webgpu`, `device: cpu (WebGPU unavailable: ...)`); none for `cpu`. */
  note?: string;
}

/**
 * The device a choice means here. `cpu` is taken as is (no probe). `webgpu` is probed and throws a one-line
 * UserError where it cannot run (never a silent fall back to the CPU). `auto` is WebGPU where the probe succeeds, else
 * the CPU, with the reason in `note`.
 */
export async function resolveDevice(choice: DeviceChoice): Promise<ResolvedDevice> {
  if (choice === 'cpu') return { device: 'cpu' };
  const p = await probeWebGpu();
  if (p.available) return { device: 'webgpu', note: 'device: webgpu' };
  if (choice === 'webgpu') throw new UserError(webgpuUnavailableMessage(p.reason ?? 'unknown reason'));
  return { device: 'cpu', note: `device: cpu (WebGPU unavailable: ${p.reason ?? 'unknown reason'})` };
}
