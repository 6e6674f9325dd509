// The linear map of a 1-D linear Resize, as a dense matrix (for exact Resize gradients as MatMuls).

/** Source coordinate of output index `o` under ONNX's coordinate_transformation_mode. */
function sourceCoordinate(o: number, inSize: number, outSize: number, mode: string): number {
  switch (mode) {
    case 'align_corners':
      return outSize === 1 ? 0 : (o * (inSize - 1)) / (outSize - 1);
    case 'asymmetric':
      return (o * inSize) / outSize;
    case 'half_pixel':
      return ((o + 0.5) * inSize) / outSize - 0.5;
    case 'pytorch_half_pixel':
      return outSize > 1 ? ((o + 0.5) * inSize) / outSize - 0.5 : 0;
    default:
      throw new Error(`Resize coordinate_transformation_mode ${mode} is not supported`);
  }
}

/**
 * M[out, in] with y = M·x for linear interpolation along one axis (row-major), or its transpose [in, out].
 * @example interpolationMatrix(2, 3, 'align_corners') // rows [1,0], [.5,.5], [0,1]
 */
export function interpolationMatrix(inSize: number, outSize: number, mode: string, transposed = false): Float32Array {
  const m = new Float32Array(inSize * outSize);
  const at = (o: number, i: number) => (transposed ? i * outSize + o : o * inSize + i);
  for (let o = 0; o < outSize; o++) {
    const src = Math.min(Math.max(sourceCoordinate(o, inSize, outSize, mode), 0), inSize - 1);
    const i0 = Math.floor(src);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const frac = src - i0;
    m[at(o, i0)] += 1 - frac;
    m[at(o, i1)] += frac;
  }
  return m;
}
