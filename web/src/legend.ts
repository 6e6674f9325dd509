// The class legend next to a segmented volume: colour, name, label value, and how much of the volume each class
// takes (voxels and millilitres) once slices have been segmented.
import { classColour } from './volume-view.ts';
import type { ClassTable } from '../../src/web/volume-segment.ts';

/** Voxels per class index. */
export function classCounts(labels: Uint8Array, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  return counts;
}

/** Fills `list` with one item per foreground class; `counts` (voxels per class) and the voxel volume in mm³ add sizes. */
export function renderLegend(list: HTMLElement, table: ClassTable, counts?: number[], voxelMm3?: number): void {
  list.replaceChildren(
    ...table.names.slice(1).map((name, i) => {
      const k = i + 1;
      const item = document.createElement('li');
      item.dataset.class = String(k);
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = classColour(k);
      const label = document.createElement('span');
      label.className = 'name';
      label.textContent = name;
      label.title = `class ${k}, label value ${table.values[k]}`;
      const size = document.createElement('span');
      size.className = 'size';
      const n = counts?.[k];
      size.textContent = n === undefined ? `= ${table.values[k]}` : voxelMm3 ? `${(n * voxelMm3 / 1000).toFixed(1)} mL` : `${n.toLocaleString('en')} vox`;
      if (n !== undefined) size.title = `${n.toLocaleString('en')} voxels, label value ${table.values[k]}`;
      item.append(swatch, label, size);
      return item;
    }),
  );
}
