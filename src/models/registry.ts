import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/types.ts';
import { cmunext } from './cmunext/model.ts';
import { MOBILEUTR, MOBILEUTR_L } from './mobileutr/config.ts';
import { mobileUtr } from './mobileutr/model.ts';
import { uNet } from './unet/model.ts';
import { unext } from './unext/model.ts';
import type { ResolvedModelOptions } from './model.ts';

/** A segmentation architecture: builds logits [N, classes, H, W] from an input [N, C, H, W]. */
export interface ModelDefinition {
  name: string;
  description: string;
  build(b: GraphBuilder, input: Value, classes: number, options?: ResolvedModelOptions): Value;
  /** The input size must be a multiple of this (default 16). */
  sizeMultiple?: number;
  /** The architecture has LGL blocks and takes the `lglKernel` option (MobileUtr). */
  lglKernel?: boolean;
}

/** Every model the toolkit knows, by CLI name. */
export const MODELS: ReadonlyMap<string, ModelDefinition> = new Map(
  [
    {
      name: 'mobileutr',
      description: 'MobileUtr (dims 16-32-64-128, 4 heads), the paper model',
      build: (b: GraphBuilder, x: Value, classes: number, o?: ResolvedModelOptions) => mobileUtr(b, x, classes, { ...MOBILEUTR, lglKernel: o?.lglKernel ?? MOBILEUTR.lglKernel }),
      lglKernel: true,
    },
    {
      name: 'mobileutr-l',
      description: 'MobileUtr-L (dims 32-64-128-256, 8 heads)',
      build: (b: GraphBuilder, x: Value, classes: number, o?: ResolvedModelOptions) => mobileUtr(b, x, classes, { ...MOBILEUTR_L, lglKernel: o?.lglKernel ?? MOBILEUTR_L.lglKernel }),
      lglKernel: true,
    },
    {
      name: 'unet',
      description: 'U-Net baseline (64-1024 channels)',
      build: (b: GraphBuilder, x: Value, classes: number) => uNet(b, x, classes),
    },
    {
      name: 'unext',
      description: 'UNeXt baseline (Valanarasu & Patel 2022: conv 16-32-128, shifted-MLP tokens 160-256)',
      build: (b: GraphBuilder, x: Value, classes: number) => unext(b, x, classes),
      sizeMultiple: 32,
    },
    {
      name: 'cmunext',
      description: 'CMUNeXt baseline (Tang et al. 2024: dims 16-32-128-160-256, large-kernel depthwise blocks)',
      build: (b: GraphBuilder, x: Value, classes: number) => cmunext(b, x, classes),
    },
  ].map((m) => [m.name, m]),
);

/** The multiple the input size of model `d` must be (16: four 2x downsamplings, unless the model says more). */
export const sizeMultipleOf = (d: ModelDefinition): number => d.sizeMultiple ?? 16;
