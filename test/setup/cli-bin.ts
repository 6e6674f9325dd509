// Picks the `mobileutr` command the tests run (test/support/bin.ts): the compiled dist/ when every file in it is
// newer than every file in src/, so that a stale build is never what a test checks.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function mtimes(dir: string): number[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => statSync(join(e.parentPath, e.name)).mtimeMs);
}

export default function setup(): void {
  const main = join(ROOT, 'dist/cli/main.js');
  if (!existsSync(main)) return;
  if (Math.max(...mtimes(join(ROOT, 'src'))) > Math.min(...mtimes(join(ROOT, 'dist')))) {
    console.warn('dist/ is older than src/: the tests run the CLI through tsx (npm run build, or npm test, to use dist/)');
    return;
  }
  process.env.MOBILEUTR_TEST_BIN = main;
}
