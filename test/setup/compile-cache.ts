// One compile cache (src/runtime/compile-cache.ts) for the whole test run, in a fresh temporary folder: tests and
// the CLIs they start share optimized training graphs, and nothing from an earlier run or from ~/.cache is used.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'mobileutr-test-cache-'));
  process.env.MOBILEUTR_CACHE_DIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
