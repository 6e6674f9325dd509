/**
 * Exact Euclidean distance transform of a 3-D grid with anisotropic voxel spacing (Felzenszwalb & Huttenlocher,
 * "Distance Transforms of Sampled Functions", 2012) in float64: along i the distance to the nearest feature of the
 * row (two sweeps), then along j and along k one lower envelope of parabolas per line. Gives the distances of
 * scipy.ndimage.distance_transform_edt(~features, sampling=spacing), squared terms summed in axis order as there.
 */
import type { Vec3 } from '../../data/volume/volume.ts';

/**
 * Squared distance in mm² from every voxel to the nearest non-zero voxel of `features` (Infinity when there is
 * none). `out` may be passed to reuse a buffer of at least the volume's size.
 */
export function squaredDistanceTransform(features: Uint8Array, dims: Vec3, spacing: Vec3, out?: Float64Array): Float64Array {
  const [nx, ny, nz] = dims;
  const total = nx * ny * nz;
  const d = out && out.length >= total ? out.subarray(0, total) : new Float64Array(total);
  const longest = Math.max(nx, ny, nz);
  const s = { f: new Float64Array(longest), g: new Float64Array(longest), v: new Int32Array(longest), z: new Float64Array(longest + 1) };
  for (let row = 0; row < ny * nz; row++) rowPass(features, d, row * nx, nx, spacing[0]);
  // along j: within each k-plane, line x has stride nx (a plane's rows stay in cache)
  for (let z = 0; z < nz; z++) for (let x = 0; x < nx; x++) line(d, x + nx * ny * z, nx, ny, spacing[1], s);
  // along k: the planes' rows j are copied into one block so that the lines are read from cache, not memory
  const block = new Float64Array(nx * nz);
  for (let y = 0; y < ny; y++) {
    for (let z = 0; z < nz; z++) block.set(d.subarray(nx * (y + ny * z), nx * (y + ny * z) + nx), z * nx);
    for (let x = 0; x < nx; x++) line(block, x, nx, nz, spacing[2], s);
    for (let z = 0; z < nz; z++) d.set(block.subarray(z * nx, z * nx + nx), nx * (y + ny * z));
  }
  return d;
}

/** The first pass on the 0/1 features of one row: (h · distance to the nearest feature)², two sweeps. */
function rowPass(features: Uint8Array, d: Float64Array, start: number, n: number, h: number): void {
  let last = -1;
  for (let q = 0; q < n; q++) {
    if (features[start + q]) last = q;
    d[start + q] = last < 0 ? Infinity : (h * (q - last)) ** 2;
  }
  last = -1;
  for (let q = n - 1; q >= 0; q--) {
    if (features[start + q]) last = q;
    if (last >= 0 && (h * (last - q)) ** 2 < d[start + q]!) d[start + q] = (h * (last - q)) ** 2;
  }
}

interface Scratch {
  f: Float64Array;
  g: Float64Array;
  v: Int32Array;
  z: Float64Array;
}

/** d[start + q·stride] = min over p of (h·(q - p))² + d[start + p·stride], q, p < n: the 1-D pass. */
function line(d: Float64Array, start: number, stride: number, n: number, h: number, { f, g, v, z }: Scratch): void {
  for (let q = 0, at = start; q < n; q++, at += stride) f[q] = d[at]!;
  // lower envelope of the parabolas of finite f only: an infinite one never wins and would make the arithmetic NaN
  let k = -1;
  for (let q = 0; q < n; q++) {
    const fq = f[q]!;
    if (fq === Infinity) continue;
    const cq = fq + (h * q) ** 2;
    let x = -Infinity;
    while (k >= 0) {
      const p = v[k]!;
      x = (cq - (f[p]! + (h * p) ** 2)) / (2 * h * h * (q - p));
      if (x > z[k]!) break;
      k--;
    }
    k++;
    v[k] = q;
    z[k] = k === 0 ? -Infinity : x;
    z[k + 1] = Infinity;
  }
  if (k < 0) return; // no feature on this line: it stays Infinity
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1]! < q) k++;
    const p = v[k]!;
    g[q] = (h * (q - p)) ** 2 + f[p]!;
  }
  for (let q = 0, at = start; q < n; q++, at += stride) d[at] = g[q]!;
}
