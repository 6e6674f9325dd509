import type { Dim } from './types.ts';

// A symbolic dim is spelled 'N' or 'N*k' (k a positive integer): enough for a dynamic batch folded into rows.
interface Sym {
  sym: string;
  coef: number;
}

function parse(d: string): Sym {
  const star = d.indexOf('*');
  return star < 0 ? { sym: d, coef: 1 } : { sym: d.slice(0, star), coef: Number(d.slice(star + 1)) };
}

function spell(s: Sym): Dim {
  return s.coef === 1 ? s.sym : `${s.sym}*${s.coef}`;
}

/** Product of dims: a number, or one symbol times a number. */
export function dimProduct(dims: readonly Dim[]): Dim {
  let coef = 1;
  let sym: string | undefined;
  for (const d of dims) {
    if (typeof d === 'number') coef *= d;
    else {
      const p = parse(d);
      if (sym !== undefined) throw new Error(`product of two symbolic dims ${sym} and ${p.sym}`);
      sym = p.sym;
      coef *= p.coef;
    }
  }
  return sym === undefined ? coef : spell({ sym, coef });
}

/** Exact quotient of two dim products (throws when not exact). */
export function dimDivide(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') {
    if (b === 0 || a % b !== 0) throw new Error(`${a} is not divisible by ${b}`);
    return a / b;
  }
  if (typeof a === 'string' && typeof b === 'number') {
    const p = parse(a);
    if (p.coef % b !== 0) throw new Error(`${a} is not divisible by ${b}`);
    return spell({ sym: p.sym, coef: p.coef / b });
  }
  if (typeof a === 'string' && typeof b === 'string') {
    const pa = parse(a);
    const pb = parse(b);
    if (pa.sym !== pb.sym || pa.coef % pb.coef !== 0) throw new Error(`${a} is not divisible by ${b}`);
    return pa.coef / pb.coef;
  }
  throw new Error(`${a} is not divisible by ${b}`);
}

export function dimsEqual(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** NumPy-style broadcast of two shapes. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else throw new Error(`shapes [${a.join(',')}] and [${b.join(',')}] do not broadcast`);
  }
  return out;
}
