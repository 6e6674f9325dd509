/**
 * Overlay pictures of a volume case: one axial or coronal slice of the 8-bit canonical image (RAS+: i towards R,
 * j towards A, k towards S) with the predicted classes filled and the true classes outlined, each class in its own
 * colour. Shown as radiologists view them: anterior (axial) or superior (coronal) up, the patient's right on the
 * left; square pixels in mm (rows repeated for thick slices), small volumes enlarged.
 *
 * @example
 *   const pic = drawCaseOverlay({ image, pred, truth, dims, spacing }, 'coronal');
 *   await writeFile('c.png', await encodePng(pic.rgb, pic.width, pic.height, 3));
 */
import { cutPlane } from '../../data/volume/slices.ts';
import type { Vec3 } from '../../data/volume/volume.ts';
import type { Rgb } from '../overlay.ts';

export type OverlayView = 'axial' | 'coronal';
export const OVERLAY_VIEWS: readonly OverlayView[] = ['axial', 'coronal'];

/** Sasha Trubetskoy's 20 distinct colours (white, black and grey left out), for classes 1, 2, ...; then they repeat. */
export const CLASS_COLOURS: readonly Rgb[] = [
  [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
  [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200],
  [128, 0, 0], [170, 255, 195], [128, 128, 0], [255, 215, 180], [0, 0, 128],
];

export const classColour = (k: number): Rgb => CLASS_COLOURS[(k - 1) % CLASS_COLOURS.length]!;
export const cssColour = ([r, g, b]: Rgb) => `rgb(${r},${g},${b})`;

export interface OverlayVolumes {
  /** 8-bit canonical image, i fastest. */
  image: Uint8Array;
  /** Class index per voxel, same order. */
  pred: Uint8Array;
  truth: Uint8Array;
  dims: Vec3;
  /** mm along i, j, k: sets the pixel aspect. */
  spacing: Vec3;
}

export interface OverlayPicture {
  view: OverlayView;
  /** Slice index along k (axial) or j (coronal). */
  slice: number;
  width: number;
  height: number;
  rgb: Uint8Array;
}

/** Canonical axis a view cuts along (axial: k, coronal: j) and the axis its rows run along (j, k). */
const CUT = { axial: 2, coronal: 1 } as const;
const ROWS = { axial: 1, coronal: 2 } as const;

/** The median slice of the truth's foreground along the view's axis, else of the prediction's, else the middle one. */
export function overlaySlice(v: OverlayVolumes, view: OverlayView): number {
  const axis = CUT[view];
  const n = v.dims[axis];
  for (const labels of [v.truth, v.pred]) {
    const perSlice = new Float64Array(n);
    const [nx, ny, nz] = v.dims;
    let total = 0;
    for (let z = 0, i = 0; z < nz; z++)
      for (let y = 0; y < ny; y++)
        for (let x = 0; x < nx; x++, i++)
          if (labels[i]) {
            perSlice[axis === 2 ? z : y]++;
            total++;
          }
    if (total === 0) continue;
    let seen = 0;
    for (let s = 0; s < n; s++) if ((seen += perSlice[s]!) * 2 >= total) return s;
  }
  return Math.floor(n / 2);
}

/** Longest side of a picture: small volumes are enlarged by a whole factor to at least MIN_SIDE, large ones shrunk to MAX_SIDE. */
const MIN_SIDE = 256;
const MAX_SIDE = 1024;

export function drawCaseOverlay(v: OverlayVolumes, view: OverlayView, slice = overlaySlice(v, view), opacity = 0.45): OverlayPicture {
  const [w, h] = [v.dims[0], v.dims[ROWS[view]]];
  const image = cutPlane(v.image, v.dims, view, slice);
  const pred = cutPlane(v.pred, v.dims, view, slice);
  const truth = cutPlane(v.truth, v.dims, view, slice);
  const [mmX, mmY] = [v.spacing[0], v.spacing[ROWS[view]]];
  const known = mmX > 0 && mmY > 0;
  const [physW, physH] = known ? [w * mmX, h * mmY] : [w, h];
  let unit = known ? Math.min(mmX, mmY) : 1; // mm per display pixel
  const side = Math.max(physW, physH) / unit;
  if (side > MAX_SIDE) unit *= side / MAX_SIDE;
  else if (side < MIN_SIDE) unit /= Math.ceil(MIN_SIDE / side);
  const width = Math.max(1, Math.round(physW / unit));
  const height = Math.max(1, Math.round(physH / unit));
  // display pixel -> plane pixel: columns mirrored (patient right on the left), rows flipped (A or S up)
  const srcX = Int32Array.from({ length: width }, (_, c) => w - 1 - Math.min(w - 1, Math.floor(((c + 0.5) * w) / width)));
  const srcY = Int32Array.from({ length: height }, (_, r) => h - 1 - Math.min(h - 1, Math.floor(((r + 0.5) * h) / height)));
  const at = (c: number, r: number) => srcX[c]! + w * srcY[r]!;
  const rgb = new Uint8Array(width * height * 3);
  for (let r = 0; r < height; r++)
    for (let c = 0; c < width; c++) {
      const s = at(c, r);
      const o = (r * width + c) * 3;
      const grey = image[s]!;
      const p = pred[s]!;
      const t = truth[s]!;
      const fill = p ? classColour(p) : undefined;
      for (let ch = 0; ch < 3; ch++) rgb[o + ch] = fill ? Math.round(grey * (1 - opacity) + fill[ch]! * opacity) : grey;
      const edge = t && (c === 0 || r === 0 || c === width - 1 || r === height - 1 || truth[at(c - 1, r)] !== t || truth[at(c + 1, r)] !== t || truth[at(c, r - 1)] !== t || truth[at(c, r + 1)] !== t);
      if (edge) rgb.set(classColour(t), o);
    }
  return { view, slice, width, height, rgb };
}
