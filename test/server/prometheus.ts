/**
 * A strict parser of the Prometheus text exposition format 0.0.4 (what GET /metrics serves), for tests. It throws
 * on anything the format does not allow: a malformed line, name, label or value; a sample before its family's
 * TYPE, or of a family that already ended; a second HELP or TYPE; a duplicate series; histogram buckets that are
 * not cumulative, no +Inf bucket, or a +Inf bucket that differs from _count; a negative counter.
 */
export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help?: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/**
 * A sample value as Prometheus reads it: Go's ParseFloat, which takes Inf and NaN in any letter case (prom-client
 * writes "Nan" for a default metric that has no value yet, e.g. an event-loop-lag percentile right after start).
 */
function parseValue(text: string, where: string): number {
  if (/^\+?inf(inity)?$/i.test(text)) return Infinity;
  if (/^-inf(inity)?$/i.test(text)) return -Infinity;
  if (/^nan$/i.test(text)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: "${text}" is not a number`);
  return Number(text);
}

/** The family a sample belongs to: histograms and summaries own _bucket, _sum and _count (and the bare name). */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const f = families.get(name);
  if (f) return f;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = families.get(name.slice(0, -suffix.length));
    if (base && (base.type === 'histogram' || (base.type === 'summary' && suffix !== '_bucket'))) return base;
  }
  return undefined;
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without "="`);
    const name = text.slice(i, eq).trim();
    if (!LABEL.test(name)) throw new Error(`${where}: bad label name "${name}"`);
    if (name in labels) throw new Error(`${where}: label "${name}" twice`);
    if (text[eq + 1] !== '"') throw new Error(`${where}: label value of "${name}" is not quoted`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      if (j >= text.length) throw new Error(`${where}: unterminated label value`);
      const c = text[j]!;
      if (c === '"') break;
      if (c === '\\') {
        const next = text[j + 1];
        if (next === '\\') value += '\\';
        else if (next === '"') value += '"';
        else if (next === 'n') value += '\n';
        else throw new Error(`${where}: bad escape "\\${next}" in a label value`);
        j += 2;
      } else {
        if (c === '\n') throw new Error(`${where}: raw newline in a label value`);
        value += c;
        j++;
      }
    }
    labels[name] = value;
    i = j + 1;
    if (i < text.length) {
      if (text[i] !== ',') throw new Error(`${where}: expected "," between labels`);
      i++;
    }
  }
  return labels;
}

const seriesKey = (s: Sample) => `${s.name}{${Object.keys(s.labels).sort().map((k) => `${k}=${JSON.stringify(s.labels[k])}`).join(',')}}`;

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families = new Map<string, Family>();
  const ended = new Set<string>();
  const series = new Set<string>();
  let current: Family | undefined;
  text
    .slice(0, -1)
    .split('\n')
    .forEach((line, n) => {
      const where = `line ${n + 1}`;
      if (line.trim() === '') return;
      if (line.startsWith('#')) {
        const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
        if (!m) return; // a comment
        const [, kind, name, rest = ''] = m;
        if (!NAME.test(name!)) throw new Error(`${where}: bad metric name "${name}"`);
        let f = families.get(name!);
        if (f && ended.has(name!)) throw new Error(`${where}: ${kind} of ${name} after its samples ended`);
        if (!f) {
          if (current) ended.add(current.name);
          f = { name: name!, type: 'untyped', samples: [] };
          families.set(name!, f);
          current = f;
        }
        if (kind === 'TYPE') {
          if (!TYPES.has(rest.trim())) throw new Error(`${where}: unknown type "${rest}"`);
          if (f.samples.length) throw new Error(`${where}: TYPE of ${name} after its samples`);
          if ((f as Family & { typed?: boolean }).typed) throw new Error(`${where}: second TYPE for ${name}`);
          (f as Family & { typed?: boolean }).typed = true;
          f.type = rest.trim() as MetricType;
        } else {
          if (f.help !== undefined) throw new Error(`${where}: second HELP for ${name}`);
          f.help = rest;
        }
        return;
      }
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?\s*$/.exec(line);
      if (!m) throw new Error(`${where}: not a sample line: ${JSON.stringify(line)}`);
      const [, name, labelText, valueText] = m;
      const sample: Sample = { name: name!, labels: parseLabels(labelText ?? '', where), value: parseValue(valueText!, where) };
      let f = familyOf(name!, families);
      if (!f) {
        // an untyped family without TYPE
        if (current) ended.add(current.name);
        f = { name: name!, type: 'untyped', samples: [] };
        families.set(name!, f);
        current = f;
      }
      if (f !== current) throw new Error(`${where}: sample of ${f.name} outside its group`);
      const key = seriesKey(sample);
      if (series.has(key)) throw new Error(`${where}: duplicate series ${key}`);
      series.add(key);
      if (f.type === 'counter' && !(sample.value >= 0)) throw new Error(`${where}: counter ${name} is ${sample.value}`);
      f.samples.push(sample);
    });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: bucket without le`);
      g.buckets.push([parseValue(le, f.name), s.value]);
    } else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else if (s.name === `${f.name}_count`) g.count = s.value;
    else throw new Error(`${f.name}: sample ${s.name} in a histogram`);
  }
  for (const [key, g] of groups) {
    const sorted = [...g.buckets].sort((a, b) => a[0] - b[0]);
    if (sorted.at(-1)?.[0] !== Infinity) throw new Error(`${f.name}${key}: no +Inf bucket`);
    for (let i = 1; i < sorted.length; i++) if (sorted[i]![1] < sorted[i - 1]![1]) throw new Error(`${f.name}${key}: buckets are not cumulative`);
    if (g.count === undefined || g.sum === undefined) throw new Error(`${f.name}${key}: no _count or _sum`);
    if (sorted.at(-1)![1] !== g.count) throw new Error(`${f.name}${key}: +Inf bucket ${sorted.at(-1)![1]} != _count ${g.count}`);
  }
}

/** The value of one series (labels must match exactly the given ones, others ignored), or undefined. */
export function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = familyOf(name, families);
  return f?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}
