// One line per command: shown by `mobileutr --help` without loading the command modules (see main.ts).
export const COMMAND_DESCRIPTIONS = {
  check:
    'check a dataset folder in one pass: layout, pairing, every image and mask decoded, sizes, mask values, duplicates, split files; for volumes (nnU-Net or images/<case>.nii.gz + labels/) grids, label values, empty labels, anisotropy; exits 1 when there are errors',
  compare:
    'the paper-style comparison: train models x datasets x splits with one schedule (resumable), then a table of params, MACs, CPU/browser latency, IoU and F1 (mean ± std) as markdown, CSV, HTML, with an IoU-vs-params bubble plot',
  eval:
    'score a model on a dataset: per-image metrics, summary, HTML report with overlays',
  export:
    'write the inference graph as a standard .onnx file',
  info:
    'print the layer table, parameter count and multiply-accumulates',
  predict:
    'write a mask PNG per image at its original size (and overlays, probability maps); with a volume model, a <case>.nii.gz label map per NIfTI file or DICOM series on its source grid',
  queue:
    'batch segmentation as a job queue on Redis (BullMQ): submit one job per image or volume (deterministic ids: no duplicates), status with throughput and ETA, retry-failed, drain',
  serve:
    'HTTP(S) segmentation service (POST /v1/segment: images, one DICOM image, NIfTI volumes; GET /healthz, /v1/model, /metrics): API keys, TLS, rate limits, inference in child processes (a crash fails only the batch in flight); stops cleanly on SIGINT/SIGTERM',
  split:
    'write a seeded random train/val split of a dataset folder (train.txt, val.txt); a volume dataset is split by case',
  train:
    'train a model with the paper protocol (SGD + poly, BCE + Dice, 300 epochs); without --data, a short demo on the bundled sample',
  worker:
    'take jobs from the queue on Redis and write what predict writes for each, atomically; run any number, on any machines; SIGTERM finishes the job in progress',
} as const;

export type CommandName = keyof typeof COMMAND_DESCRIPTIONS;

/** The environment variables that change how `train` and `compare` run, shown after their options. */
export const TRAINING_ENVIRONMENT_HELP = `
Environment:
  MOBILEUTR_CACHE_DIR        a folder to keep ONNX Runtime's optimized training graphs in, so that the next run
                             with the same model, size and batch starts ~4 s sooner; costs peak memory (MobileUtr
                             at 256x256, batch 8: 3.05 instead of 2.49 GB). Unset: no cache
  MOBILEUTR_TRAINING_MALLOC  0: train without the glibc malloc settings that keep peak memory down (Linux)
  MOBILEUTR_DEBUG            1: print the stack trace of an internal error`;
