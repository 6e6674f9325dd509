// A training run kept in the browser's Origin Private File System: the RunStore of run-core.ts plus a copy of the
// dataset, so a reload or a closed tab loses nothing and the run resumes exactly. Nothing leaves the machine.
// createWritable() commits on close() (the spec's swap file): a crash leaves the previous file or the new one.
import { UserError } from '../../errors.ts';
import { parseSafetensors } from '../../io/safetensors-format.ts';
import type { SegmentationModel } from '../../models/model.ts';
import { encodeWeights } from '../../models/state-dict.ts';
import type { TrainConfig } from '../../train/config.ts';
import type { EpochRecord } from '../../train/curves.ts';
import { decodeResume, encodeResume } from '../../train/resume-format.ts';
import type { RunStore } from '../../train/run-core.ts';
import type { DatasetFile } from './dataset.ts';

export const RUNS_DIR = 'mobileutr-runs';
const RESUME = 'resume.safetensors';

async function root(): Promise<FileSystemDirectoryHandle> {
  if (!globalThis.navigator?.storage?.getDirectory) throw new UserError('this browser has no Origin Private File System (navigator.storage.getDirectory)');
  return navigator.storage.getDirectory();
}

/** The folder of run `name`, created when `create`; undefined when it does not exist. */
export async function runDirectory(name: string, create = false): Promise<FileSystemDirectoryHandle | undefined> {
  const runs = await (await root()).getDirectoryHandle(RUNS_DIR, { create: true });
  try {
    return await runs.getDirectoryHandle(name, { create });
  } catch (e) {
    if ((e as DOMException).name === 'NotFoundError') return undefined;
    throw e;
  }
}

export async function listRuns(): Promise<string[]> {
  const runs = await (await root()).getDirectoryHandle(RUNS_DIR, { create: true });
  const names: string[] = [];
  for await (const [name, handle] of runs as unknown as AsyncIterable<[string, FileSystemHandle]>) if (handle.kind === 'directory') names.push(name);
  return names.sort();
}

export async function deleteRun(name: string): Promise<void> {
  const runs = await (await root()).getDirectoryHandle(RUNS_DIR, { create: true });
  await runs.removeEntry(name, { recursive: true }).catch((e: DOMException) => {
    if (e.name !== 'NotFoundError') throw e;
  });
}

async function dirAt(dir: FileSystemDirectoryHandle, path: string[], create: boolean): Promise<FileSystemDirectoryHandle> {
  let d = dir;
  for (const part of path) d = await d.getDirectoryHandle(part, { create });
  return d;
}

export async function writeFileAt(dir: FileSystemDirectoryHandle, path: string, data: Blob | Uint8Array | string): Promise<void> {
  const parts = path.split('/');
  const parent = await dirAt(dir, parts.slice(0, -1), true);
  const handle = await parent.getFileHandle(parts.at(-1)!, { create: true });
  const writable = await handle.createWritable();
  try {
    await writable.write(data as FileSystemWriteChunkType);
  } catch (e) {
    await writable.abort().catch(() => undefined);
    throw e;
  }
  await writable.close();
}

/** The file at `path`, or undefined when it does not exist. */
export async function readFileAt(dir: FileSystemDirectoryHandle, path: string): Promise<File | undefined> {
  const parts = path.split('/');
  try {
    const parent = await dirAt(dir, parts.slice(0, -1), false);
    return await (await parent.getFileHandle(parts.at(-1)!)).getFile();
  } catch (e) {
    if ((e as DOMException).name === 'NotFoundError' || (e as DOMException).name === 'TypeMismatchError') return undefined;
    throw e;
  }
}

/** Copies the picked dataset files into the run (data/<path>) and lists them in data.json. */
export async function saveDataset(dir: FileSystemDirectoryHandle, files: readonly DatasetFile[], onProgress?: (done: number, total: number) => void): Promise<void> {
  for (const [i, f] of files.entries()) {
    await writeFileAt(dir, `data/${f.path}`, f.file);
    onProgress?.(i + 1, files.length);
  }
  await writeFileAt(dir, 'data.json', JSON.stringify(files.map((f) => f.path)));
}

/** The dataset files a run keeps (saveDataset). */
export async function loadDataset(dir: FileSystemDirectoryHandle): Promise<DatasetFile[]> {
  const list = await readFileAt(dir, 'data.json');
  if (!list) throw new UserError('the run has no copy of its dataset (data.json missing)');
  const paths = JSON.parse(await list.text()) as string[];
  const files: DatasetFile[] = [];
  for (const path of paths) {
    const file = await readFileAt(dir, `data/${path}`);
    if (!file) throw new UserError(`the run's copy of ${path} is missing`);
    files.push({ path, file });
  }
  return files;
}

export async function readText(dir: FileSystemDirectoryHandle, path: string): Promise<string | undefined> {
  return (await readFileAt(dir, path))?.text();
}

/** RunStore over an OPFS run folder: config.json, train.txt, val.txt, metrics.jsonl, resume/best/last .safetensors. */
export function opfsStore(name: string, dir: FileSystemDirectoryHandle): RunStore {
  return {
    name,
    resumeHint: 'Resume on the training page',
    async start(config: TrainConfig, train, val) {
      await writeFileAt(dir, 'config.json', `${JSON.stringify(config, null, 2)}\n`);
      await writeFileAt(dir, 'train.txt', `${train.join('\n')}\n`);
      await writeFileAt(dir, 'val.txt', `${val.join('\n')}\n`);
      await writeFileAt(dir, 'metrics.jsonl', '');
    },
    async loadResume(model: SegmentationModel) {
      const file = await readFileAt(dir, RESUME);
      if (!file) throw new UserError(`${name}: no checkpoint to resume from (the run saved none yet)`);
      return decodeResume(parseSafetensors(new Uint8Array(await file.arrayBuffer()), `${name}/${RESUME}`), model, `${name}/${RESUME}`);
    },
    saveResume: (model, trainer, position) => writeFileAt(dir, RESUME, encodeResume(model, trainer, position)),
    saveWeights: (which, model, metadata) => writeFileAt(dir, `${which}.safetensors`, encodeWeights(model, metadata)),
    epochDone: (_record: EpochRecord, all) => writeFileAt(dir, 'metrics.jsonl', all.map((r) => `${JSON.stringify(r)}\n`).join('')),
  };
}
