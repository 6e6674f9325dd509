import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Debian's Python, which has python3-torch (a pyenv or venv python on PATH may not). */
export const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./torch/bench.py', import.meta.url));

/** True when Debian's python3-torch is installed (the benchmarks' PyTorch reference). */
export function torchAvailable(): boolean {
  return existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

/** Runs one measurement of bench/torch/bench.py and returns its JSON line, or undefined (with the reason printed). */
export function runTorch(args: string[], timeoutMs = 600_000): Record<string, number> | undefined {
  const r = spawnSync(PYTHON, [SCRIPT, ...args], { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) {
    console.log(`  PyTorch reference failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
    return undefined;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}
