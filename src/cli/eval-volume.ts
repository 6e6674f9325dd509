/**
 * `mobileutr eval` on a volume dataset: every case segmented slice by slice (segmentVolume, the training
 * preprocessing), the label volume reassembled, and each foreground class scored in 3-D on the canonical grid with
 * the voxel spacing: Dice, IoU, HD95 and ASSD in mm (`--protocol mm`) or TransUNet's convention (`--protocol
 * transunet`: HD95 in voxels, its 1/0 and 0/0 rules). Means over cases per class, then over classes.
 */
import { join } from 'node:path';
import { readSplitFile } from '../data/split.ts';
import { gridMismatch } from '../data/volume/check.ts';
import { scanVolumeDataset } from '../data/volume/dataset.ts';
import { readVolume } from '../data/volume/index.ts';
import type { VolumeModelMeta } from '../data/volume/model-meta.ts';
import { toCanonical } from '../data/volume/orientation.ts';
import { toClasses } from '../data/volume/slices.ts';
import { UserError } from '../errors.ts';
import { DISTANCE_UNIT, PROTOCOLS, scoreCase, VolumeReport, type Protocol, type VolumeSummary } from '../eval/volume/index.ts';
import type { SegmentationModel } from '../models/model.ts';
import type { Device } from '../runtime/device.ts';
import { Segmenter } from '../pipeline/segmenter.ts';
import { segmentVolume } from '../pipeline/volume.ts';
import { ProgressLine } from './progress.ts';
import { ensureOutputDir } from './run.ts';

export interface VolumeEvalFlags {
  data: string;
  split?: string;
  out: string;
  threads: number;
  protocol: string;
  batch: number;
  volumeIndex?: number;
  weights?: string;
}

export async function evaluateVolumes(flags: VolumeEvalFlags, model: SegmentationModel, meta: VolumeModelMeta | undefined, device: Device = 'cpu'): Promise<VolumeSummary> {
  if (!meta)
    throw new UserError(`${flags.weights ?? 'the model'}: not trained on volumes (no volume metadata: intensity, axis, classes); ${flags.data} is a volume dataset: give the weights of a volume run`);
  if (!PROTOCOLS.includes(flags.protocol as Protocol)) throw new UserError(`--protocol must be ${PROTOCOLS.join(' or ')}, got ${flags.protocol}`);
  const protocol = flags.protocol as Protocol;
  const ds = await scanVolumeDataset(flags.data);
  const ids = flags.split ? await readSplitFile(flags.split, ds.cases.map((c) => c.id)) : ds.cases.map((c) => c.id);
  if (ids.length === 0) throw new UserError(`${flags.data}: no labelled cases to evaluate`);
  const byId = new Map(ds.cases.map((c) => [c.id, c]));
  await ensureOutputDir(flags.out);
  const report = new VolumeReport(flags.out, { title: `${model.name} on ${flags.data}`, protocol, classNames: meta.classNames });
  const segmenter = await Segmenter.create(model, { threads: flags.threads, device });
  const progress = new ProgressLine('eval', ids.length, 'case');
  let slices = 0;
  let seconds = 0;
  try {
    for (const [n, id] of ids.entries()) {
      const c = byId.get(id)!;
      const channels = [];
      for (const path of c.images) channels.push(await readVolume(path, { volumeIndex: flags.volumeIndex }));
      const truthVolume = await readVolume(c.label!, { volumeIndex: flags.volumeIndex });
      const problem = gridMismatch(truthVolume, channels[0]!, 'label');
      if (problem) throw new UserError(`${c.label}: ${problem}`);
      const r = await segmentVolume(segmenter, model.options, channels, meta, { batch: flags.batch });
      slices += r.slices;
      seconds += r.timing.totalMs / 1000;
      const truth = toClasses(toCanonical(truthVolume).volume.data, meta.classValues, c.label!);
      const { dims, spacing } = r.canonical;
      const score = scoreCase({ id, pred: r.classMap, truth, dims, spacing, classes: meta.classValues.length }, protocol);
      await report.add(score, { image: r.image, pred: r.classMap, truth, dims, spacing });
      progress.update(n + 1, { slices: String(slices) });
    }
  } finally {
    progress.done();
    await segmenter.release();
  }
  const summary = await report.write({ model: model.name, weights: flags.weights ?? null, data: flags.data, split: flags.split ?? null, slices, seconds });
  printSummary(summary);
  console.log(`wrote ${join(flags.out, 'per_case.csv')}, summary.json, report.html (${ids.length} cases, ${slices} slices, ${(slices / Math.max(seconds, 1e-9)).toFixed(1)} slices/s)`);
  return summary;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '   -  ' : (x * 100).toFixed(2).padStart(6));
const dist = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '    -   ' : x.toFixed(2).padStart(8));

function printSummary(s: VolumeSummary): void {
  const unit = DISTANCE_UNIT[s.protocol];
  const width = Math.max(5, ...s.classes.map((c) => c.name.length));
  console.log(`${'class'.padEnd(width)}    Dice     IoU  HD95 (${unit})`);
  for (const c of s.classes) console.log(`${c.name.padEnd(width)}  ${pct(c.dice.mean)}  ${pct(c.iou.mean)}  ${dist(c.hd95.mean)}`);
  console.log(`${'mean'.padEnd(width)}  ${pct(s.overall.dice.mean)}  ${pct(s.overall.iou.mean)}  ${dist(s.overall.hd95.mean)}`);
}
