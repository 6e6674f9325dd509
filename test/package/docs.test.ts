// `npm run docs`: TypeDoc (tools/docs, TypeScript 5.9 API) over both entries, warnings as errors (typedoc.json), into
// a temporary folder; the main API pages exist and carry their examples.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from '../../scripts/consumer-project.ts';

const run = promisify(execFile);
let out: string | undefined;

afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

describe('API reference (TypeDoc)', () => {
  it('generates without warnings, with pages and examples for the main entries', async () => {
    out = await mkdtemp(join(tmpdir(), 'mobileutr-docs-'));
    await run('npm', ['ci', '--prefix', 'tools/docs', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: REPO, timeout: 180_000 });
    await run(process.execPath, ['tools/docs/node_modules/typedoc/bin/typedoc', '--out', out], { cwd: REPO, timeout: 180_000 });
    const page = (p: string) => readFile(join(out!, p), 'utf8');
    for (const [file, name] of [
      ['modules/mobileutr.html', 'mobileutr'],
      ['modules/mobileutr_web.html', 'mobileutr/web'],
      ['classes/mobileutr.Segmenter.html', 'Segmenter'],
      ['classes/mobileutr_web.WebSegmenter.html', 'WebSegmenter'],
      ['functions/mobileutr.loadModel.html', 'loadModel'],
      ['functions/mobileutr.createTrainer.html', 'createTrainer'],
      ['functions/mobileutr.evaluate.html', 'evaluate'],
      ['functions/mobileutr.exportOnnx.html', 'exportOnnx'],
    ]) {
      const html = await page(file);
      expect(html, file).toContain(name);
      expect(html, `${file} has an example`).toMatch(/Example/);
    }
  }, 300_000);
});
