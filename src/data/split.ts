import { readFile, stat, writeFile } from 'node:fs/promises';
import { UserError } from '../errors.ts';

export { makeSplit } from './split-draw.ts';

/** Split files list ids, one per line: 16 MiB is far beyond any real dataset. */
const MAX_SPLIT_BYTES = 16 * 2 ** 20;

async function readSplitText(path: string): Promise<string> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new UserError(`${path}: not a regular file`);
    if (info.size > MAX_SPLIT_BYTES) throw new UserError(`${path}: ${info.size} bytes is too large for a split file (limit ${MAX_SPLIT_BYTES})`);
    return await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${path}: ${code === 'ENOENT' ? 'split file not found' : `cannot read split file (${code})`}`);
  }
}

/** The entries of a split file with their line numbers (blank lines and # comments dropped). */
function splitLines(text: string): { line: string; at: number }[] {
  const out: { line: string; at: number }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line) out.push({ line, at: i + 1 });
  });
  return out;
}

/** Reads a split file (one id per line; blank lines and # comments ignored). Unknown or repeated ids are UserErrors. */
export async function readSplitFile(path: string, known: readonly string[]): Promise<string[]> {
  const text = await readSplitText(path);
  const knownSet = new Set(known);
  const seen = new Set<string>();
  const ids: string[] = [];
  for (const { line, at } of splitLines(text)) {
    // split files written by other tools may name files (benign_001.png) rather than ids
    const id = knownSet.has(line) ? line : line.replace(/\.[A-Za-z]+$/, '');
    if (!knownSet.has(id)) throw new UserError(`${path}:${at}: "${line.slice(0, 80)}" is not an id of the dataset`);
    if (seen.has(id)) throw new UserError(`${path}:${at}: id "${id}" is listed twice`);
    seen.add(id);
    ids.push(id);
  }
  if (ids.length === 0) throw new UserError(`${path}: split file lists no ids`);
  return ids;
}

/**
 * Reads the split a run was started with (its train.txt or val.txt, written by writeSplitFile), for a resume: the
 * run must continue on exactly these ids, whatever was added to the dataset folder since. Ids that are no longer
 * in the dataset stop with one UserError that names the file, how many are missing and the first few.
 */
export async function readRunSplit(path: string, known: readonly string[], dataset: string): Promise<string[]> {
  const entries = splitLines(await readSplitText(path));
  const knownSet = new Set(known);
  const missing = entries.filter((e) => !knownSet.has(e.line)).map((e) => e.line);
  if (missing.length > 0) {
    const first = missing.slice(0, 5).map((id) => `"${id.slice(0, 80)}"`).join(', ');
    throw new UserError(
      `${path}: ${missing.length} of the ${entries.length} ids this run was started with ${missing.length === 1 ? 'is' : 'are'} no longer in ${dataset} (${missing.length > 5 ? 'first: ' : ''}${first}): restore those images and masks to resume, or start a new run`,
    );
  }
  const ids = entries.map((e) => e.line);
  if (new Set(ids).size !== ids.length) throw new UserError(`${path}: an id is listed twice (was the file edited?)`);
  if (ids.length === 0) throw new UserError(`${path}: split file lists no ids`);
  return ids;
}

export async function writeSplitFile(path: string, ids: readonly string[]): Promise<void> {
  await writeFile(path, `${ids.join('\n')}\n`);
}
