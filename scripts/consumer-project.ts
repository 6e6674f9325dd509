// A fresh npm project with this checkout's `npm pack` tarball installed, as a user would have it: shared by the package
// test (test/package) and the CLI start-up benchmark (bench/cli.ts). Installs from npm's cache when it can.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO = fileURLToPath(new URL('../', import.meta.url));

export interface PackEntry {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string; size: number }[];
}

export interface ConsumerProject {
  dir: string;
  pack: PackEntry;
  /** npm install's stdout and stderr. */
  installLog: string;
}

/**
 * Packs the built checkout into `work` and installs the tarball, plus `devDependencies` of this repo named in
 * `withDev` (same version ranges), into `work/consumer`, with `ignore-scripts=true` in its .npmrc as the README
 * advises. Fails when dist/ is missing (npm test builds it; so does `npm run build`).
 */
export async function consumerProject(work: string, withDev: readonly string[] = []): Promise<ConsumerProject> {
  if (!existsSync(join(REPO, 'dist/index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  const packed = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: REPO, maxBuffer: 64 * 2 ** 20 });
  const pack = (JSON.parse(packed.stdout.toString()) as PackEntry[])[0]!;
  const dir = join(work, 'consumer');
  await mkdir(dir);
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await writeFile(join(dir, '.npmrc'), 'ignore-scripts=true\n');
  const versions = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const dev = withDev.map((name) => `${name}@${versions.devDependencies[name]}`);
  const install = await run('npm', ['install', join(work, pack.filename), ...dev, '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd: dir,
    timeout: 300_000,
    maxBuffer: 64 * 2 ** 20,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  return { dir, pack, installLog: `${install.stdout}\n${install.stderr}` };
}
