import { describe, expect, it } from 'vitest';
import { graphMacs, layerTable } from '../../src/analysis/complexity.ts';
import { UserError } from '../../src/errors.ts';
import { createModel } from '../../src/models/model.ts';

describe('parameter and MAC counts (DESIGN.md §3, official code)', () => {
  it.each([
    ['mobileutr', 1_390_305],
    ['mobileutr-l', 6_209_217],
    ['unet', 34_527_041],
  ])('%s has %i parameters', (name, params) => {
    expect(createModel(name, { size: 64 }).parameterCount).toBe(params);
  });

  it('MobileUtr at 256x256: 2.416 G MACs in convs and linears, 3.246 G with attention', () => {
    const macs = graphMacs(createModel('mobileutr', { size: 256 }).graph.builder);
    expect(macs.weights).toBe(2_415_656_960);
    expect(macs.weights + macs.attention).toBe(3_246_129_152);
  });

  it('U-Net at 256x256: 65.35 G MACs', () => {
    const macs = graphMacs(createModel('unet', { size: 256 }).graph.builder);
    expect(macs.weights / 1e9).toBeCloseTo(65.347, 3);
    expect(macs.attention).toBe(0);
  });

  it('the layer table adds up to the totals', () => {
    const model = createModel('mobileutr', { size: 128 });
    const rows = layerTable(model.graph.builder);
    expect(rows.map((r) => r.module)).toContain('lklgl_bottleneck.2');
    expect(rows.reduce((n, r) => n + r.params, 0)).toBe(model.parameterCount);
    expect(rows.reduce((n, r) => n + r.macs, 0)).toBe(graphMacs(model.graph.builder).weights);
  });

  it('in-channels and classes change the stem and head only', () => {
    const base = createModel('mobileutr', { size: 64 }).parameterCount;
    expect(createModel('mobileutr', { size: 64, inChannels: 4 }).parameterCount).toBe(base + 16 * 9);
    expect(createModel('mobileutr', { size: 64, classes: 3 }).parameterCount).toBe(base + 2 * 17);
    // a 1-channel input is repeated to 3 channels, like the official code: same parameters
    expect(createModel('mobileutr', { size: 64, inChannels: 1 }).parameterCount).toBe(base);
  });

  it.each([[100], [8], [0], [1.5]])('size %s is a clear error', (size) => {
    expect(() => createModel('mobileutr', { size })).toThrow(UserError);
  });

  it('an unknown model is a clear error listing the known ones', () => {
    expect(() => createModel('resnet')).toThrow(/unknown model "resnet"; available: mobileutr, mobileutr-l, unet/);
  });
});
