// CLI start-up from the installed package (npm pack -> fresh project, as users get it): `mobileutr --help` and
// `mobileutr info`, median of --runs runs after one warm-up, next to references measured in the same run: a bare
// `node -e ''` (the floor) and the source checkout's tsx launcher (bin/mobileutr.js, what the CLI was before the
// package build). Targets (issue 12): --help <= 0.3 s, info <= 1 s. Also prints the tarball's sizes.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { consumerProject, REPO } from '../scripts/consumer-project.ts';

const run = promisify(execFile);
const opts = new Command().option('--runs <n>', 'timed runs per command (median)', '5').parse().opts<{ runs: string }>();
const runs = Number(opts.runs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function seconds(cmd: string, args: string[], cwd: string): Promise<number> {
  await run(cmd, args, { cwd, maxBuffer: 16 * 2 ** 20 }); // warm-up (disk cache)
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await run(cmd, args, { cwd, maxBuffer: 16 * 2 ** 20 });
    times.push((performance.now() - t) / 1000);
  }
  return median(times);
}

const work = await mkdtemp(join(tmpdir(), 'mobileutr-bench-cli-'));
try {
  console.log('packing and installing into a fresh project...');
  const { dir, pack } = await consumerProject(work);
  console.log(`tarball ${pack.filename}: ${(pack.size / 1e6).toFixed(2)} MB packed, ${(pack.unpackedSize / 1e6).toFixed(2)} MB unpacked, ${pack.files.length} files`);
  const bin = join(dir, 'node_modules/.bin/mobileutr');
  const dev = join(REPO, 'bin/mobileutr.js');
  const floor = await seconds(process.execPath, ['-e', ''], dir);
  console.log(`\nmedian of ${runs} runs; node -e '' takes ${floor.toFixed(3)} s here`);
  console.log('command            installed s  target s  verdict  checkout (tsx) s  speed-up');
  for (const [args, target] of [[['--help'], 0.3], [['info'], 1.0]] as const) {
    const installed = await seconds(bin, [...args], dir);
    const checkout = await seconds(process.execPath, [dev, ...args], REPO);
    console.log(
      `mobileutr ${args.join(' ').padEnd(8)} ${installed.toFixed(3).padStart(11)}  ${target.toFixed(1).padStart(8)}  ${(installed <= target ? 'ok' : 'SLOW').padEnd(7)}  ${checkout.toFixed(3).padStart(16)}  ${(checkout / installed).toFixed(1).padStart(7)}x`,
    );
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
