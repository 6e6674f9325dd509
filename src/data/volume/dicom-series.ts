/**
 * A folder holding one CT or MR series (one slice per file) -> a {@link Volume} laid out as dcm2niix writes it:
 * voxel i = column, j = row counted from the last row, k = slice in ascending position along the slice normal;
 * the affine maps to RAS+ (DICOM's LPS with x and y negated). Slices are ordered by ImagePositionPatient projected
 * on the normal (row cosines × column cosines), never by file name, InstanceNumber or SliceThickness, and each
 * slice's RescaleSlope/Intercept is applied.
 *
 * @example
 *   const ct = await readDicomSeries('images/case_01');  // ct.data in HU, ct.spacing [0.98, 0.98, 2]
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import { canDecode, decodableSyntaxes, decodeFrame, isEncapsulated, transferSyntaxName } from './dicom-decode.ts';
import { frameBytes, isPart10, parseDicomFile, sliceOf, type DicomSlice } from './dicom-file.ts';
import { MAX_VOLUME_VOXELS } from './nifti-read.ts';
import { formatDims, gridFromAffine, type Mat4, type Vec3, type Volume, type VoxelType } from './volume.ts';

export interface ReadDicomOptions {
  /** Refuse series with more voxels; default {@link MAX_VOLUME_VOXELS}. */
  maxVoxels?: number;
}

const dot = (a: readonly number[], b: readonly number[]) => a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!;
const cross = (a: readonly number[], b: readonly number[]): Vec3 => [a[1]! * b[2]! - a[2]! * b[1]!, a[2]! * b[0]! - a[0]! * b[2]!, a[0]! * b[1]! - a[1]! * b[0]!];
const close = (a: readonly number[], b: readonly number[], tol: number) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) <= tol);
const fmt = (v: readonly number[]) => v.map((x) => +x.toFixed(4)).join('\\');
const mm = (x: number) => `${+x.toFixed(3)} mm`;

/** Reads every DICOM image file directly in `folder` (non-DICOM files and non-image objects are passed over). */
export async function readDicomSeries(folder: string, options: ReadDicomOptions = {}): Promise<Volume> {
  const slices = await scanFolder(folder);
  checkOneSeries(folder, slices);
  const ordered = orderSlices(folder, slices);
  const first = ordered[0]!.slice;
  const dims: Vec3 = [first.columns, first.rows, ordered.length];
  const maxVoxels = options.maxVoxels ?? MAX_VOLUME_VOXELS;
  const n = dims[0] * dims[1] * dims[2];
  if (n > maxVoxels) throw new UserError(`${folder}: the series is ${formatDims(dims)} = ${n.toLocaleString('en-US')} voxels, more than the limit of ${maxVoxels.toLocaleString('en-US')}`);

  const { affine, spacing } = seriesAffine(first, ordered);
  const data = new Float32Array(n);
  const plane = dims[0] * dims[1];
  for (let k = 0; k < ordered.length; k++) {
    const s = ordered[k]!.slice;
    const px = await decodeSlice(folder, s);
    const base = k * plane;
    for (let r = 0; r < s.rows; r++) {
      const j = s.rows - 1 - r; // dcm2niix flips the rows
      const src = r * s.columns;
      const dst = base + j * s.columns;
      for (let i = 0; i < s.columns; i++) data[dst + i] = px[src + i]! * s.slope + s.intercept;
    }
  }
  return { dims, spacing, affine, data, datatype: voxelType(first), source: folder, grid: gridFromAffine(dims, affine, spacing) };
}

async function scanFolder(folder: string): Promise<DicomSlice[]> {
  let names: string[];
  try {
    if (!(await stat(folder)).isDirectory()) throw new UserError(`${folder}: not a folder (a DICOM series is read from the folder that holds its files)`);
    names = (await readdir(folder)).sort();
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${folder}: DICOM folder not found`);
  }
  const slices: DicomSlice[] = [];
  for (const name of names) {
    if (name.startsWith('.') || name.toUpperCase() === 'DICOMDIR') continue;
    const path = join(folder, name);
    if (!(await stat(path)).isFile()) continue;
    const bytes = await readFile(path);
    if (!isPart10(bytes)) continue;
    let slice: DicomSlice | undefined;
    try {
      slice = sliceOf(parseDicomFile(bytes), name);
    } catch (e) {
      throw new UserError(`${folder}: ${name} is not a readable DICOM file (${String((e as Error).message ?? e).split('\n')[0]})`);
    }
    if (slice) slices.push(slice);
  }
  if (slices.length === 0) throw new UserError(`${folder}: no DICOM image files in the folder (Part-10 files with 'DICM' at byte 128)`);
  return slices;
}

/** One series: one SeriesInstanceUID (when set), and one orientation, size, pixel spacing and syntax. */
function checkOneSeries(folder: string, slices: DicomSlice[]): void {
  const uids = [...new Set(slices.map((s) => s.seriesUid))];
  if (uids.length > 1) {
    const names = uids.map((u) => `${u || '(blank)'} (${slices.filter((s) => s.seriesUid === u).length} files)`);
    throw new UserError(`${folder}: ${uids.length} series in one folder (SeriesInstanceUID ${names.join(', ')}); put each series in a folder of its own`);
  }
  const a = slices[0]!;
  for (const s of slices) {
    if (s.orientation.length !== 6 || s.position.length !== 3) throw new UserError(`${folder}: ${s.file} has no ImagePositionPatient/ImageOrientationPatient, so its slice cannot be placed`);
    if (s.frames !== 1) throw new UserError(`${folder}: ${s.file} is a multi-frame image (${s.frames} frames); only one slice per file is read`);
    if (s.samplesPerPixel !== 1 || !s.photometric.startsWith('MONOCHROME')) throw new UserError(`${folder}: ${s.file} is a colour image (${s.photometric}, ${s.samplesPerPixel} samples per pixel); CT and MR series are greyscale`);
    const differ = (what: string, x: string, y: string) => new UserError(`${folder}: two series in one folder? ${a.file} and ${s.file} differ in ${what} (${x} vs ${y}); put each series in a folder of its own`);
    if (!close(s.orientation, a.orientation, 1e-4)) throw differ('orientation (ImageOrientationPatient)', fmt(a.orientation), fmt(s.orientation));
    if (s.rows !== a.rows || s.columns !== a.columns) throw differ('size', `${a.columns}×${a.rows}`, `${s.columns}×${s.rows}`);
    if (!close(s.pixelSpacing, a.pixelSpacing, 1e-4)) throw differ('PixelSpacing', fmt(a.pixelSpacing), fmt(s.pixelSpacing));
    if (s.bitsAllocated !== a.bitsAllocated || s.pixelRepresentation !== a.pixelRepresentation) throw differ('pixel format', `${a.bitsAllocated} bits, representation ${a.pixelRepresentation}`, `${s.bitsAllocated} bits, representation ${s.pixelRepresentation}`);
  }
  if (a.pixelSpacing.length !== 2) throw new UserError(`${folder}: ${a.file} has no PixelSpacing`);
  for (const s of slices)
    if (!canDecode(s.syntax))
      throw new UserError(`${folder}: ${s.file} is stored as ${transferSyntaxName(s.syntax)}, which cannot be decoded; readable: ${decodableSyntaxes().join(', ')} (convert with e.g. gdcmconv --raw or dcmdjpeg)`);
}

interface Placed {
  slice: DicomSlice;
  /** Position along the slice normal, mm. */
  z: number;
}

/** Slices in ascending position along the normal; duplicates, gaps and uneven steps are errors. */
function orderSlices(folder: string, slices: DicomSlice[]): Placed[] {
  const o = slices[0]!.orientation;
  const normal = cross(o.slice(0, 3), o.slice(3, 6));
  const placed = slices.map((slice) => ({ slice, z: dot(normal, slice.position) })).sort((p, q) => p.z - q.z);
  for (let k = 1; k < placed.length; k++) {
    const [p, q] = [placed[k - 1]!, placed[k]!];
    if (Math.abs(q.z - p.z) < 1e-3)
      throw new UserError(`${folder}: ${p.slice.file} and ${q.slice.file} are at the same position (${mm(p.z)} along the slice normal): two series in one folder, or a file copied twice?`);
  }
  if (placed.length < 3) return placed;
  const steps = placed.slice(1).map((q, k) => q.z - placed[k]!.z);
  const median = [...steps].sort((x, y) => x - y)[Math.floor(steps.length / 2)]!;
  const tol = 0.01 * median + 1e-3;
  for (let k = 0; k < steps.length; k++) {
    if (Math.abs(steps[k]! - median) > tol) {
      const [p, q] = [placed[k]!, placed[k + 1]!];
      const missing = steps[k]! > 1.5 * median ? `; ${Math.round(steps[k]! / median) - 1} slice(s) missing?` : '';
      throw new UserError(`${folder}: uneven slice spacing: slices are ${mm(median)} apart, but ${mm(steps[k]!)} between ${p.slice.file} and ${q.slice.file} (at ${mm(p.z)} and ${mm(q.z)} along the slice normal)${missing}`);
    }
  }
  // every slice on the line from the first to the last (a second series shifted in-plane would not be)
  const p0 = placed[0]!.slice.position;
  const last = placed[placed.length - 1]!.slice.position;
  const step = [0, 1, 2].map((c) => (last[c]! - p0[c]!) / (placed.length - 1));
  for (let k = 1; k < placed.length - 1; k++) {
    const p = placed[k]!.slice.position;
    if (!close(p, [0, 1, 2].map((c) => p0[c]! + k * step[c]!), 0.01 * Math.hypot(...step) + 1e-2))
      throw new UserError(`${folder}: ${placed[k]!.slice.file} is off the line through the other slices' positions (ImagePositionPatient ${fmt(p)}): two series in one folder?`);
  }
  return placed;
}

/** The dcm2niix affine (RAS+) and voxel spacing from the first slice and the ordered positions. */
function seriesAffine(first: DicomSlice, ordered: Placed[]): { affine: Mat4; spacing: Vec3 } {
  const o = first.orientation;
  const rowDir = o.slice(0, 3); // towards increasing column index
  const colDir = o.slice(3, 6); // towards increasing row index
  const [dr, dc] = first.pixelSpacing as [number, number];
  const p0 = first.position;
  let step: number[];
  if (ordered.length > 1) {
    const last = ordered[ordered.length - 1]!.slice.position;
    step = [0, 1, 2].map((c) => (last[c]! - p0[c]!) / (ordered.length - 1));
  } else {
    const normal = cross(rowDir, colDir);
    step = normal.map((x) => x * (first.spacingBetweenSlices ?? first.sliceThickness ?? 1));
  }
  // LPS: P(i, j, k) = p0 + i·dc·rowDir + (rows - 1 - j)·dr·colDir + k·step
  const lps = [0, 1, 2].map((r) => [rowDir[r]! * dc, -colDir[r]! * dr, step[r]!, p0[r]! + (first.rows - 1) * dr * colDir[r]!]);
  const affine: Mat4 = [lps[0]!.map((x) => -x), lps[1]!.map((x) => -x), lps[2]!, [0, 0, 0, 1]];
  return { affine, spacing: [dc, dr, Math.hypot(...step)] };
}

async function decodeSlice(folder: string, s: DicomSlice) {
  const bytes = await readFile(join(folder, s.file));
  try {
    const ds = parseDicomFile(bytes);
    return await decodeFrame(s.syntax, frameBytes(ds, isEncapsulated(s.syntax)), s);
  } catch (e) {
    const msg = e instanceof Error ? e.message : typeof e === 'number' ? `codec error ${e}` : String(e);
    throw new UserError(`${folder}: ${s.file}: ${transferSyntaxName(s.syntax)} pixel data could not be decoded (${msg.split('\n')[0]})`);
  }
}

function voxelType(s: DicomSlice): VoxelType {
  const signed = s.pixelRepresentation === 1;
  return s.bitsAllocated === 8 ? (signed ? 'int8' : 'uint8') : s.bitsAllocated === 16 ? (signed ? 'int16' : 'uint16') : signed ? 'int32' : 'uint32';
}
