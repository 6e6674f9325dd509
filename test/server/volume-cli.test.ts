import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeNifti } from '../../src/data/volume/nifti-read.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';
import { segmentVolume } from '../../src/pipeline/volume.ts';
import { CT_META, geometryBytes, volumeModel, writeAwkwardCt } from '../pipeline/volume-synthetic.ts';
import { postImage, serveCli as serve, sleep } from './support.ts';



describe('mobileutr serve with weights trained on volumes', () => {
  it('reads the volume metadata from the weights, segments a .nii.gz as segmentVolume does, applies --max-voxels, stops with exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mobileutr-serve-volume-'));
    const weights = join(dir, 'ct.safetensors');
    const model = await volumeModel(CT_META, 32, 7, weights);
    writeAwkwardCt(join(dir, 'ct.nii.gz'), [23, 19, 7]);
    writeAwkwardCt(join(dir, 'big.nii.gz'), [32, 32, 8]);
    const ct = readFileSync(join(dir, 'ct.nii.gz'));
    const seg = await Segmenter.create(model, { threads: 1 });
    const expected = (await segmentVolume(seg, model.options, decodeNifti(ct, 'ct'), CT_META)).labels;
    await seg.release();

    const s = await serve('--weights', weights, '--concurrency', '1', '--max-voxels', '5000');
    try {
      const info = await (await fetch(`${s.url}/v1/model`)).json();
      for (let i = 0; i < 100 && !/volumes: background/.test(s.log()); i++) await sleep(20); // logged once listening
      expect(s.log()).toMatch(/volumes: background, organ a, organ b/);
      expect(info).toMatchObject({ input: 'volume', class_names: CT_META.classNames, limits: { max_voxels: 5000 } });
      const res = await postImage(s.url, ct, { 'content-type': 'application/gzip' });
      expect(res.status, res.bytes.toString().slice(0, 300)).toBe(200);
      expect(geometryBytes(res.bytes)).toEqual(geometryBytes(ct));
      expect(Array.from(decodeNifti(res.bytes, 'answer').data)).toEqual(Array.from(expected));
      const big = await postImage(s.url, readFileSync(join(dir, 'big.nii.gz')), { 'content-type': 'application/gzip' });
      expect(big.status).toBe(422);
      expect(big.json.error).toMatch(/32×32×8 = 8,192 voxels is more than this server's limit of 5,000 voxels/);
    } finally {
      s.child.kill('SIGTERM');
    }
    expect(await s.exit).toBe(0);
  });
});
