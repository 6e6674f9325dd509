/**
 * The synthetic CT series behind the DICOM fixtures: 4 slices of 40 columns × 24 rows, 12-bit unsigned values with
 * RescaleIntercept -1024, an oblique orientation (rows turned 30° about z), PixelSpacing 0.6 (rows) × 0.8 (columns),
 * SliceThickness 5 mm but 2.5 mm between slices, and files written out of order (slice2, slice0, slice3, slice1).
 */
import type { SliceSpec } from '../../support/dicom.ts';

export const PHANTOM = { rows: 24, columns: 40, slices: 4, spacing: [0.8, 0.6, 2.5], intercept: -1024 } as const;
/** cos 30°, sin 30° as a DS string holds them (16 characters at most). */
export const PHANTOM_ORIENTATION = [0.8660254, 0.5, 0, -0.5, 0.8660254, 0];

/** Stored value of column x, row y, slice z (before rescale): smooth structure plus a deterministic texture. */
export const phantomValue = (x: number, y: number, z: number) => (Math.round(1000 + 900 * Math.sin(x / 6 + z) * Math.cos(y / 5)) + ((x * 37 + y * 101 + z * 53) % 97)) & 0xfff;

/** The slices in file order; slice k sits at k·2.5 mm along the normal from (-10, 20, 30). */
export function phantomSeries(): SliceSpec[] {
  const order = [2, 0, 3, 1];
  return order.map((k) => {
    const pixels = new Uint16Array(PHANTOM.rows * PHANTOM.columns);
    for (let y = 0; y < PHANTOM.rows; y++) for (let x = 0; x < PHANTOM.columns; x++) pixels[y * PHANTOM.columns + x] = phantomValue(x, y, k);
    return {
      rows: PHANTOM.rows,
      columns: PHANTOM.columns,
      pixels,
      position: [-10, 20, 30 + 2.5 * k] as [number, number, number],
      orientation: PHANTOM_ORIENTATION,
      pixelSpacing: [0.6, 0.8] as [number, number],
      seriesUid: '1.2.826.0.1.3680043.9.9.1',
      instanceNumber: 10 + k,
      sliceThickness: 5,
      intercept: PHANTOM.intercept,
      bitsStored: 12,
    };
  });
}
