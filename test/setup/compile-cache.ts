// Turns the compile cache (src/runtime/compile-cache.ts, off by default) on for the whole test run, in a fresh
// temporary folder: tests and the CLIs they start open each training graph in ~1 s instead of ~5 s after its first
// use, with the same bits out (test/runtime/compile-cache.test.ts). Nothing cached before the run is used.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'mobileutr-test-cache-'));
  process.env.MOBILEUTR_CACHE_DIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
