/**
 * `mobileutr check` on a volume dataset (nnU-Net v2 or images/ + labels/): every case read once, and in one pass
 * the grids of its channels and label (dims, affines more than 1e-3 mm apart), label values (integers, listed in
 * dataset.json), empty label maps, strongly anisotropic spacing (a note) and unreadable files, one line each.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import type { CheckOptions, CheckReport, Finding, Severity } from '../check.ts';
import { readDatasetJson, scanVolumeDataset, type VolumeDataset } from './dataset.ts';
import { readVolume } from './index.ts';
import { affineDistance, formatDims, type Volume } from './volume.ts';

/** Affines further apart than this (mm, largest entry difference) are different grids. */
export const GRID_TOLERANCE_MM = 1e-3;
/** Largest over smallest voxel size above which a volume gets a note. */
export const ANISOTROPY_NOTE = 3;

const mm = (v: readonly number[]) => v.map((x) => +x.toPrecision(4)).join('×');

/** A UserError from the readers as a finding: their messages start with the path. */
function unreadable(e: unknown, path: string): Finding {
  if (!(e instanceof UserError)) throw e;
  const message = e.message.startsWith(`${path}: `) ? e.message.slice(path.length + 2) : e.message;
  return { severity: 'error', path, message };
}

async function tryRead(path: string, findings: Finding[]): Promise<Volume | undefined> {
  try {
    return await readVolume(path);
  } catch (e) {
    findings.push(unreadable(e, path));
    return undefined;
  }
}

/** Differences between a grid and its reference, as an error message, or undefined when they match. */
export function gridMismatch(v: Volume, ref: Volume, what: string): string | undefined {
  if (v.dims.some((d, i) => d !== ref.dims[i])) return `${what} is ${formatDims(v.dims)} voxels but its image is ${formatDims(ref.dims)}`;
  const d = affineDistance(v.affine, ref.affine);
  if (d > GRID_TOLERANCE_MM) return `${what}'s affine differs from its image's by ${+d.toPrecision(3)} mm (tolerance ${GRID_TOLERANCE_MM} mm): not the same grid`;
  return undefined;
}

/** Label value findings of one label map: non-integers, values dataset.json does not list, an empty map. */
export function labelFindings(label: Volume, known: Map<number, string> | undefined): { severity: Severity; message: string }[] {
  const out: { severity: Severity; message: string }[] = [];
  const counts = new Map<number, number>();
  let fractional = 0;
  let firstFractional = 0;
  for (const v of label.data) {
    if (!Number.isInteger(v)) {
      if (fractional++ === 0) firstFractional = v;
      continue;
    }
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  if (fractional > 0) out.push({ severity: 'error', message: `${fractional} voxels are not integers (first: ${firstFractional}): a label map holds class values` });
  const values = [...counts.keys()].sort((a, b) => a - b);
  if (known) {
    const unknown = values.filter((v) => !known.has(v));
    if (unknown.length > 0) {
      const listed = [...known].sort(([a], [b]) => a - b).map(([v, n]) => `${v} ${n}`).join(', ');
      const shown = unknown.slice(0, 8).map((v) => `${v} (${counts.get(v)} voxels)`).join(', ');
      out.push({ severity: 'error', message: `label value${unknown.length > 1 ? 's' : ''} ${shown}${unknown.length > 8 ? ', ...' : ''} not in dataset.json (${listed})` });
    }
  }
  if (values.every((v) => v === 0) && fractional === 0) out.push({ severity: 'warning', message: 'empty label map (background only)' });
  return out;
}

/** A note when the voxels are much longer along one axis than another. */
export function anisotropyNote(v: Volume): string | undefined {
  const ratio = Math.max(...v.spacing) / Math.min(...v.spacing);
  if (!(ratio > ANISOTROPY_NOTE)) return undefined;
  return `strongly anisotropic spacing ${mm(v.spacing)} mm (ratio ${ratio.toFixed(1)}): slice along the finest axes (axial for thick-slice CT)`;
}

/** Checks one case: every channel and the label read, grids compared, label values checked. True when no error. */
async function checkCase(images: string[], label: string | undefined, known: Map<number, string> | undefined, findings: Finding[]): Promise<boolean> {
  const before = findings.length;
  const first = await tryRead(images[0]!, findings);
  if (first) {
    const note = anisotropyNote(first);
    if (note) findings.push({ severity: 'info', path: images[0]!, message: note });
  }
  for (const path of images.slice(1)) {
    const v = await tryRead(path, findings);
    const problem = v && first && gridMismatch(v, first, 'channel');
    if (problem) findings.push({ severity: 'error', path, message: problem });
  }
  if (label) {
    const v = await tryRead(label, findings);
    if (v) {
      const problem = first && gridMismatch(v, first, 'label');
      if (problem) findings.push({ severity: 'error', path: label, message: problem });
      for (const f of labelFindings(v, known)) findings.push({ ...f, path: label });
    }
  }
  return !findings.slice(before).some((f) => f.severity === 'error');
}

/** Checks a volume dataset folder and returns every finding, in case order. */
export async function checkVolumeDataset(root: string, o: CheckOptions = {}): Promise<CheckReport> {
  const findings: Finding[] = [];
  let ds: VolumeDataset;
  try {
    ds = await scanVolumeDataset(root);
  } catch (e) {
    findings.push(unreadable(e, join(root, 'dataset.json')));
    return report(root, findings, undefined, 0);
  }
  for (const p of ds.problems) {
    const at = p.indexOf(': ');
    findings.push({ severity: 'error', path: p.slice(0, at), message: p.slice(at + 2) });
  }
  const jsonPath = join(root, 'dataset.json');
  if (ds.layout === 'nnunet' && !ds.labels) {
    const exists = await stat(jsonPath).then(() => true, () => false);
    if (exists) await readDatasetJson(jsonPath);
    findings.push({ severity: 'warning', path: jsonPath, message: exists ? 'no "labels": label values are not checked against names' : 'not found: label values are not checked against names' });
  }
  const total = ds.cases.length + ds.testCases.length;
  let done = 0;
  let usable = 0;
  for (const c of ds.cases) {
    if (await checkCase(c.images, c.label, ds.labels, findings)) usable++;
    o.onProgress?.(++done, total);
  }
  for (const c of ds.testCases) {
    await checkCase(c.images, undefined, ds.labels, findings);
    o.onProgress?.(++done, total);
  }
  return report(root, findings, ds, usable);
}

function report(root: string, findings: Finding[], ds: VolumeDataset | undefined, usable: number): CheckReport {
  const counts = { error: 0, warning: 0, info: 0 };
  for (const f of findings) counts[f.severity]++;
  return {
    root,
    findings,
    layout: ds?.layout ?? 'nnunet',
    images: (ds?.cases.length ?? 0) + (ds?.testCases.length ?? 0),
    masks: ds?.cases.length ?? 0,
    classes: ds?.labels?.size ?? 0,
    usable,
    counts,
  };
}
