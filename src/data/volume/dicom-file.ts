/**
 * One DICOM Part-10 file -> what a series needs from it: geometry, pixel format, rescale and transfer syntax,
 * parsed by dicom-parser (no pixel is decoded here). Files that are not DICOM, or hold no image, give undefined.
 */
import { createRequire } from 'node:module';
import { inflateRawSync } from 'node:zlib';
import type { DataSet, Element } from 'dicom-parser';
import type { PixelFormat } from './dicom-decode.ts';

type DicomParser = typeof import('dicom-parser');
const dicomParser = createRequire(import.meta.url)('dicom-parser') as DicomParser;

export interface DicomSlice extends PixelFormat {
  file: string;
  /** SeriesInstanceUID ('' when blank or absent, as anonymisers leave it). */
  seriesUid: string;
  /** ImageOrientationPatient: row direction cosines (towards increasing column), then column direction. */
  orientation: number[];
  /** ImagePositionPatient of the first transmitted pixel (LPS mm). */
  position: number[];
  /** PixelSpacing: [between rows, between columns] in mm. */
  pixelSpacing: number[];
  samplesPerPixel: number;
  photometric: string;
  frames: number;
  slope: number;
  intercept: number;
  syntax: string;
  sliceThickness?: number;
  spacingBetweenSlices?: number;
  instanceNumber?: number;
}

const numbers = (ds: DataSet, tag: string, n: number): number[] | undefined => {
  const s = ds.string(tag);
  if (!s) return undefined;
  const v = s.split('\\').map(Number);
  return v.length >= n && v.slice(0, n).every(Number.isFinite) ? v.slice(0, n) : undefined;
};
const number = (ds: DataSet, tag: string) => numbers(ds, tag, 1)?.[0];

/** dicom-parser's hook for Deflated Explicit VR Little Endian: inflate the dataset after the file meta. */
function inflater(arr: Uint8Array, position: number): Uint8Array {
  const inflated = inflateRawSync(arr.subarray(position));
  const out = new Uint8Array(position + inflated.length);
  out.set(arr.subarray(0, position));
  out.set(inflated, position);
  return out;
}

export const isPart10 = (bytes: Uint8Array) => bytes.length > 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d; // "DICM"

/** Parses a Part-10 file (throws dicom-parser's error on a corrupt one). */
export function parseDicomFile(bytes: Uint8Array): DataSet {
  return dicomParser.parseDicom(bytes, { inflater: inflater as unknown as (arr: Uint8Array, position: number) => void });
}

/** The slice's facts, or undefined when the file holds no pixel data (a report, a presentation state, ...). */
export function sliceOf(ds: DataSet, file: string): DicomSlice | undefined {
  if (!ds.elements.x7fe00010) return undefined;
  return {
    file,
    seriesUid: (ds.string('x0020000e') ?? '').trim(),
    orientation: numbers(ds, 'x00200037', 6) ?? [],
    position: numbers(ds, 'x00200032', 3) ?? [],
    pixelSpacing: numbers(ds, 'x00280030', 2) ?? [],
    rows: ds.uint16('x00280010') ?? 0,
    columns: ds.uint16('x00280011') ?? 0,
    bitsAllocated: ds.uint16('x00280100') ?? 0,
    bitsStored: ds.uint16('x00280101') ?? ds.uint16('x00280100') ?? 0,
    pixelRepresentation: ds.uint16('x00280103') ?? 0,
    samplesPerPixel: ds.uint16('x00280002') ?? 1,
    photometric: (ds.string('x00280004') ?? 'MONOCHROME2').trim(),
    frames: number(ds, 'x00280008') ?? 1,
    slope: number(ds, 'x00281053') ?? 1,
    intercept: number(ds, 'x00281052') ?? 0,
    syntax: (ds.string('x00020010') ?? '').replace(/\0/g, '').trim(),
    sliceThickness: number(ds, 'x00180050'),
    spacingBetweenSlices: number(ds, 'x00180088'),
    instanceNumber: number(ds, 'x00200013'),
  };
}

/** The bytes of the (single) frame: the native pixel data, or the codestream gathered from its fragments. */
export function frameBytes(ds: DataSet, encapsulated: boolean): Uint8Array {
  const el = ds.elements.x7fe00010 as Element;
  if (!encapsulated || !el.encapsulatedPixelData) return ds.byteArray.subarray(el.dataOffset, el.dataOffset + el.length);
  const fragments = el.fragments ?? [];
  return dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, fragments.length);
}
