// The `mobileutr` command that tests start in child processes: dist/cli/main.js where `npm test` has just built it
// from the current src/ (test/setup/cli-bin.ts decides, once per run), else bin/mobileutr.js, which compiles src/
// with tsx as it loads (~0.4 s more for every process, and for every worker process that one starts).
import { fileURLToPath } from 'node:url';

export const BIN = process.env.MOBILEUTR_TEST_BIN || fileURLToPath(new URL('../../bin/mobileutr.js', import.meta.url));
