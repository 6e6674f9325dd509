/**
 * A minimal DICOM Part-10 writer for tests: one greyscale slice per file, Explicit or Implicit VR Little Endian,
 * or any other transfer syntax UID with the given bytes as one encapsulated fragment (to test refusals).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SliceSpec {
  rows: number;
  columns: number;
  /** rows × columns stored values, row by row. */
  pixels: Int16Array | Uint16Array;
  position: [number, number, number];
  orientation?: number[];
  pixelSpacing?: [number, number];
  seriesUid?: string;
  instanceNumber?: number;
  sliceThickness?: number;
  slope?: number;
  intercept?: number;
  /** Default Explicit VR Little Endian. */
  syntax?: string;
  /** For an encapsulated syntax: the fragment's bytes. */
  encapsulated?: Uint8Array;
  bitsStored?: number;
}

export const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const IMPLICIT_LE = '1.2.840.10008.1.2';

const LONG_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);

function pad(bytes: Uint8Array, padByte: number): Uint8Array {
  if (bytes.length % 2 === 0) return bytes;
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = padByte;
  return out;
}

function element(group: number, elem: number, vr: string, value: Uint8Array, explicit: boolean, undefinedLength = false): Uint8Array {
  const v = undefinedLength ? value : pad(value, vr === 'UI' || vr === 'OB' ? 0 : 0x20);
  const long = LONG_VRS.has(vr);
  const head = explicit ? (long ? 12 : 8) : 8;
  const out = new Uint8Array(head + v.length);
  const d = new DataView(out.buffer);
  d.setUint16(0, group, true);
  d.setUint16(2, elem, true);
  const len = undefinedLength ? 0xffffffff : v.length;
  if (explicit) {
    out[4] = vr.charCodeAt(0);
    out[5] = vr.charCodeAt(1);
    if (long) d.setUint32(8, len, true);
    else d.setUint16(6, len, true);
  } else d.setUint32(4, len, true);
  out.set(v, head);
  return out;
}

const text = (s: string) => new TextEncoder().encode(s);
const us = (n: number) => new Uint8Array(new Uint16Array([n]).buffer);
const concat = (parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);

/** Encapsulated pixel data: an empty basic offset table, one fragment, the sequence delimiter. */
function encapsulate(fragment: Uint8Array): Uint8Array {
  const item = (b: Uint8Array) => {
    const p = pad(b, 0);
    const out = new Uint8Array(8 + p.length);
    const d = new DataView(out.buffer);
    d.setUint16(0, 0xfffe, true);
    d.setUint16(2, 0xe000, true);
    d.setUint32(4, p.length, true);
    out.set(p, 8);
    return out;
  };
  const end = new Uint8Array(8);
  new DataView(end.buffer).setUint16(0, 0xfffe, true);
  new DataView(end.buffer).setUint16(2, 0xe0dd, true);
  return concat([item(new Uint8Array(0)), item(fragment), end]);
}

export function dicomSlice(s: SliceSpec, sopUid: string): Uint8Array {
  const syntax = s.syntax ?? EXPLICIT_LE;
  const explicit = syntax !== IMPLICIT_LE;
  const signed = s.pixels instanceof Int16Array;
  const meta = [
    element(0x0002, 0x0001, 'OB', new Uint8Array([0, 1]), true),
    element(0x0002, 0x0002, 'UI', text('1.2.840.10008.5.1.4.1.1.2'), true),
    element(0x0002, 0x0003, 'UI', text(sopUid), true),
    element(0x0002, 0x0010, 'UI', text(syntax), true),
    element(0x0002, 0x0012, 'UI', text('1.2.3.4.5.6.7'), true),
  ];
  const metaBytes = concat(meta);
  const groupLength = element(0x0002, 0x0000, 'UL', new Uint8Array(new Uint32Array([metaBytes.length]).buffer), true);
  const e = (g: number, el: number, vr: string, v: Uint8Array) => element(g, el, vr, v, explicit);
  const ds = [
    e(0x0008, 0x0016, 'UI', text('1.2.840.10008.5.1.4.1.1.2')),
    e(0x0008, 0x0018, 'UI', text(sopUid)),
    e(0x0008, 0x0060, 'CS', text('CT')),
    ...(s.sliceThickness !== undefined ? [e(0x0018, 0x0050, 'DS', text(String(s.sliceThickness)))] : []),
    e(0x0020, 0x000d, 'UI', text('1.2.3.4')),
    e(0x0020, 0x000e, 'UI', text(s.seriesUid ?? '')),
    e(0x0020, 0x0013, 'IS', text(String(s.instanceNumber ?? 1))),
    e(0x0020, 0x0032, 'DS', text(s.position.join('\\'))),
    e(0x0020, 0x0037, 'DS', text((s.orientation ?? [1, 0, 0, 0, 1, 0]).join('\\'))),
    e(0x0028, 0x0002, 'US', us(1)),
    e(0x0028, 0x0004, 'CS', text('MONOCHROME2')),
    e(0x0028, 0x0010, 'US', us(s.rows)),
    e(0x0028, 0x0011, 'US', us(s.columns)),
    e(0x0028, 0x0030, 'DS', text((s.pixelSpacing ?? [0.5, 0.75]).join('\\'))),
    e(0x0028, 0x0100, 'US', us(16)),
    e(0x0028, 0x0101, 'US', us(s.bitsStored ?? 16)),
    e(0x0028, 0x0102, 'US', us((s.bitsStored ?? 16) - 1)),
    e(0x0028, 0x0103, 'US', us(signed ? 1 : 0)),
    e(0x0028, 0x1052, 'DS', text(String(s.intercept ?? 0))),
    e(0x0028, 0x1053, 'DS', text(String(s.slope ?? 1))),
    s.encapsulated
      ? element(0x7fe0, 0x0010, 'OB', encapsulate(s.encapsulated), explicit, true)
      : e(0x7fe0, 0x0010, 'OW', new Uint8Array(s.pixels.buffer, s.pixels.byteOffset, s.pixels.byteLength)),
  ];
  const preamble = new Uint8Array(132);
  preamble.set(text('DICM'), 128);
  return concat([preamble, groupLength, metaBytes, ...ds]);
}

/** Writes one file per slice into `dir` (made if needed), named `slice<N>.dcm` in the order given. */
export function writeSeries(dir: string, slices: SliceSpec[]): string {
  mkdirSync(dir, { recursive: true });
  slices.forEach((s, n) => writeFileSync(join(dir, `slice${String(n).padStart(3, '0')}.dcm`), dicomSlice(s, `1.2.3.4.5.${n + 1}`)));
  return dir;
}
