/** Hyper-parameters of the official MobileUtr variants (DESIGN.md §3). */
export interface MobileUtrConfig {
  dims: [number, number, number, number];
  /** ConvUtr depths of layer1..3, LGL bottleneck depth, transformer bottleneck depth. */
  depths: [number, number, number, number, number];
  kernels: [number, number, number];
  heads: number;
  /** DropPath rate of the LGL bottleneck. */
  dropPath: number;
  /** Depthwise kernel of the LGL blocks' LocalAgg (pos_embed and attn): 9 in the official code (lgl-kernel.ts). */
  lglKernel: number;
}

export const MOBILEUTR: MobileUtrConfig = {
  dims: [16, 32, 64, 128],
  depths: [1, 1, 3, 3, 3],
  kernels: [3, 3, 7],
  heads: 4,
  dropPath: 0.1,
  lglKernel: 9,
};

export const MOBILEUTR_L: MobileUtrConfig = {
  dims: [32, 64, 128, 256],
  depths: [1, 1, 3, 3, 4],
  kernels: [3, 3, 7],
  heads: 8,
  dropPath: 0.1,
  lglKernel: 9,
};
