// glibc's malloc settings for training. ONNX Runtime's CPU arena takes its regions from malloc, and glibc serves
// blocks over 32 MB with mmap: at 256x256 the arena's regions then end up resident far beyond the tensors alive at
// once, 3.3 GB of peak RSS for MobileUtr at batch 8 instead of 2.6 GB, which put us above PyTorch's. With mmap off
// and no trimming, the same regions come from the heap and stay mapped between steps (no page faults either).
// glibc reads these settings only at process start, so `train` and `compare` run themselves again in a child
// process that has them; elsewhere (macOS, Windows, musl) nothing changes. `bench:train` measures the same way.
import { spawn } from 'node:child_process';

/** The environment glibc's malloc reads at start: no mmap for large blocks, never give the heap back to the OS. */
export const TRAINING_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_MAX_: '0',
  MALLOC_TRIM_THRESHOLD_: String(2 ** 40),
};

/** Set in the child, so it does not start another; set it to 0 to run without the settings (A/B measurements). */
export const ALLOCATOR_MARK = 'MOBILEUTR_TRAINING_MALLOC';

function usesGlibc(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    return Boolean(header?.glibcVersionRuntime);
  } catch {
    return false;
  }
}

/** Whether this process should hand the command to a child with TRAINING_MALLOC_ENV. */
export function needsTrainingAllocator(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[ALLOCATOR_MARK] === undefined && usesGlibc();
}

/**
 * Runs this CLI invocation again in a child with TRAINING_MALLOC_ENV and exits as the child does.
 * The child has its own process group, so Ctrl-C reaches it once, forwarded from here (twice would mean "quit at
 * once" to `train`); SIGTERM and SIGHUP are forwarded too. When this process dies without forwarding (kill -9), the
 * IPC channel closes and the child exits at once, as the killed process would have (checkpoints are atomic).
 */
export function runWithTrainingAllocator(): Promise<never> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env: { ...process.env, ...TRAINING_MALLOC_ENV, [ALLOCATOR_MARK]: '1' },
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, forward(signal));
  return new Promise(() => {
    child.on('error', (e) => {
      console.error(`error: cannot start the training process: ${e.message}`);
      process.exit(1);
    });
    child.on('exit', (code, signal) => {
      if (signal) {
        process.removeAllListeners(signal);
        process.kill(process.pid, signal);
      }
      process.exit(code ?? 1);
    });
  });
}

/** In the child: exit at once when the parent is gone. */
export function exitWithParent(): void {
  if (process.env[ALLOCATOR_MARK] !== '1' || !process.connected) return;
  process.on('disconnect', () => process.exit(137));
  process.channel?.unref();
}
