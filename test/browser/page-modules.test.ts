// The web app's browser-independent modules, run on Node: reading model facts from .onnx files and the mask PNG.
import onnxProto from 'onnx-proto';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { createModel } from '../../src/models/model.ts';
import { modelInfo, OnnxFormatError, readOnnxSummary } from '../../src/web/onnx-info.ts';
import { encodeGreyPng } from '../../src/web/png.ts';
import { WEBGPU_PROBE_TOLERANCE, worstGradientError } from '../../src/web/train/webgpu-probe.ts';

const { onnx } = onnxProto;

describe('web/src/onnx-info (model facts from an .onnx file)', () => {
  it('reads size, channels and classes from the metadata that mobileutr export writes', () => {
    const bytes = createModel('mobileutr', { size: 32, inChannels: 1, classes: 3 }).toOnnx();
    const summary = readOnnxSummary(bytes);
    expect(summary.producer).toBe('mobileutr');
    expect(summary.metadata).toMatchObject({ model: 'mobileutr', size: '32', in_channels: '1', classes: '3' });
    expect(summary.inputs).toEqual([{ name: 'input', dims: ['N', 1, 32, 32] }]);
    expect(summary.outputs[0]).toEqual({ name: 'logits', dims: ['N', 3, 32, 32] });
    expect(modelInfo(bytes)).toEqual({ name: 'mobileutr', size: 32, inChannels: 1, classes: 3, inputName: 'input', outputName: 'logits', source: 'metadata' });
  });

  it('falls back to the input and output shapes when there is no metadata', () => {
    const model = onnx.ModelProto.decode(createModel('mobileutr', { size: 48 }).toOnnx());
    model.metadataProps = [];
    const bytes = onnx.ModelProto.encode(model).finish();
    expect(modelInfo(bytes)).toMatchObject({ size: 48, inChannels: 3, classes: 1, source: 'input shape' });
  });

  it('refuses files that are not ONNX models, with a reason', () => {
    expect(() => modelInfo(new TextEncoder().encode('definitely not a model'))).toThrow(OnnxFormatError);
    expect(() => modelInfo(new Uint8Array(0))).toThrow(/not an ONNX file/);
    const truncated = createModel('mobileutr', { size: 32 }).toOnnx().subarray(0, 5000);
    expect(() => modelInfo(truncated)).toThrow(/not an ONNX file/);
  });
});

describe('web/src/png (the downloaded mask)', () => {
  it('encodes an 8-bit grey PNG that decodes to the same pixels', async () => {
    const width = 37;
    const height = 23;
    const pixels = new Uint8Array(width * height).map((_, i) => ((i * 7) % 3 === 0 ? 255 : i % 5));
    const png = new Uint8Array(await (await encodeGreyPng(pixels, width, height)).arrayBuffer());
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels, meta.depth]).toEqual(['png', width, height, 1, 'uchar']);
    expect(new Uint8Array(await sharp(png).extractChannel(0).raw().toBuffer())).toEqual(pixels);
  });
});

describe('src/web/train/webgpu-probe (the measure that decides whether the page trains on WebGPU)', () => {
  it('worstGradientError is the worst ||got − want|| / ||want||, leaving out tensors whose want is ~0', () => {
    const want: Record<string, Float32Array> = { a: Float32Array.of(3, 4), b: Float32Array.of(1, 0), zero: Float32Array.of(0, 1e-12) };
    const got: Record<string, Float32Array> = { a: Float32Array.of(3, 4.5), b: Float32Array.of(1.1, 0), zero: Float32Array.of(5, 5) };
    // a: 0.5 / 5 = 0.1; b: 0.1 / 1 = 0.1 (float32 rounding aside); zero: left out
    const e = worstGradientError(['a', 'b', 'zero'], (n) => got[n]!, (n) => want[n]!);
    expect(e).toBeCloseTo(0.1, 6);
    expect(worstGradientError(['a'], (n) => want[n]!, (n) => want[n]!)).toBe(0);
    expect(e).toBeGreaterThan(WEBGPU_PROBE_TOLERANCE);
  });
});
