"""Trains the PyTorch MobileUtr reference the way the OFFICIAL code trains it (Mobile-U-ViT / CMUNeXt main.py,
DESIGN.md §4-§5), reading the dataset folder itself with OpenCV. It does not use any of our TypeScript code or
choices: it is the independent side of `npm run repro:busi`.

  /usr/bin/python3 bench/torch/train_busi.py --dataset DIR --train-split FILE --val-split FILE
        [--size 256] [--epochs 300] [--batch 8] [--lr 0.01] [--seed 41] [--threads 2] [--drop-path 0.1]
        [--compat] [--no-cache] [--save best.pt] [--out result.json]
  /usr/bin/python3 bench/torch/train_busi.py --make-synthetic DIR [--size 32] [--train-count 24] [--val-count 8]

DIR holds images/<id>.<ext> and masks/0/<id>.png (0/255); the split files hold one id per line.
Needs Debian's python3-torch, libopenblas0-pthread and python3-opencv (reference only: the product never needs them).

The official protocol, point by point (main.py + dataloader/dataset.py + utils/{losses,metrics}.py):
- seed_torch(41): random, numpy and torch seeded with --seed; PYTHONHASHSEED.
- Sample: cv2.imread(image) (3 channels; grey files are replicated), cv2.imread(mask, IMREAD_GRAYSCALE).
- Train transform, albumentations 1.2.0 semantics, python `random` drawn in albumentations' order:
  Compose(p 1) -> RandomRotate90 (p 0.5, np.rot90 by k, k = random.randint(0, 3), so k = 0 is possible)
  -> Flip (p 0.5, cv2.flip code random.randint(-1, 1): -1 both, 0 vertical, 1 horizontal)
  -> Resize(size, size) (cv2.resize INTER_LINEAR for the image, INTER_NEAREST for the mask, on the rotated
  original) -> Normalize (ImageNet mean/std, max pixel value 255). Validation: Resize + Normalize.
- label = mask / 255, shape [1, S, S].
- DataLoader(batch_size=--batch, shuffle=True, drop_last=False): the last, smaller batch is trained;
  len(trainloader) = ceil(n / batch) iterations per epoch; max_iterations = len(trainloader) * epochs.
  (The official loader uses 8 worker processes; here the samples are made in the main process, num_workers=0.
  The shuffle comes from the global torch generator, as with the official default sampler.)
- Model: MobileUtr (bench/torch/mobileutr.py, the official state_dict layout), DropPath 0.1 in the LGL bottleneck.
- optim.SGD(lr 0.01, momentum 0.9, weight_decay 1e-4); loss 0.5*BCEWithLogits(mean) + 1 - mean_b soft Dice
  (smoothing 1e-5, per sample on sigmoid probabilities).
- Per iteration: outputs = model(x); loss; zero_grad; backward; step; THEN
  lr = base_lr * (1 - iter_num / max_iterations) ** 0.9; iter_num += 1  (steps 0 and 1 both run at base_lr).
- After every epoch: model.eval(), batch 1 over the validation split, iou_score per image averaged over images:
  prediction sigmoid(output) > 0.5, truth label > 0.5, IoU = (|P&G| + 1e-5) / (|P|G| + 1e-5),
  Dice = 2 IoU / (IoU + 1), SE = TP/(TP+FN+1e-6), PC = TP/(TP+FP+1e-6), F1 = 2 SE PC/(SE+PC+1e-6).
  The checkpoint is kept when the mean val IoU is > the best so far (best starts at 0): the first best epoch.
Two artefacts of the official loader are NOT the default (DESIGN.md §4 says they are artefacts and our default is
RGB with one normalisation); --compat reproduces them: images stay BGR, and are divided by 255 once more after
Normalize. The official `GT == max(GT)` in SE/PC (it marks every pixel as truth when a mask is empty) is not
reproduced: truth is label > 0.5 (no BUSI benign/malignant mask is empty; a tiny one can vanish at a small --size).

Decoded originals are cached in memory (grey images as one channel) unless --no-cache; decoding is deterministic,
so this changes no result, only the time spent re-reading PNGs every epoch.

stderr: one progress line per epoch. stdout (and --out): one JSON line at the end:
  {"best_epoch", "best_iou", "best_dice", "best_f1", "final_iou", "epochs", "size", "iterations_per_epoch",
   "max_iterations", "threads", "seconds", "train_seconds", "val_seconds", "images_per_s", "history": [...]}
history: per epoch {"epoch", "lr_last", "loss", "val_iou", "val_dice", "val_f1", "train_seconds", "val_seconds"}.
seconds = wall time of the whole run after the data is loaded; images_per_s = training images / training seconds.
OPENBLAS_NUM_THREADS defaults to 1 and cv2 runs single-threaded, so --threads is the whole thread budget.
"""
import argparse
import json
import math
import os
import random
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Debian's OpenBLAS is the pthread build: its threads fight PyTorch's OpenMP threads (bench.py). numpy loads it too,
# so this must come before the first import of numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# imported in main() after OPENBLAS_NUM_THREADS is set
torch = cv2 = mobileutr = segmentation_loss = None


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def seed_torch(seed):
    """The official seed_torch (CUDA calls left out: CPU only)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


# ---------------------------------------------------------------- data

def read_split(path):
    with open(path) as f:
        ids = [line.strip() for line in f]
    ids = [i for i in ids if i]
    if not ids:
        raise SystemExit(f"{path}: no ids")
    return ids


def image_path(folder, case):
    images = os.path.join(folder, "images")
    for ext in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
        p = os.path.join(images, case + ext)
        if os.path.exists(p):
            return p
    raise SystemExit(f"{images}: no image for id {case}")


class Originals:
    """cv2.imread of image and mask per id, as the official MedicalDataSets.__getitem__ reads them."""

    def __init__(self, folder, compat, cache):
        self.folder, self.compat, self.cache = folder, compat, {} if cache else None

    def _read(self, case):
        image = cv2.imread(image_path(self.folder, case))  # IMREAD_COLOR: BGR, grey replicated, alpha dropped
        mask = cv2.imread(os.path.join(self.folder, "masks", "0", case + ".png"), cv2.IMREAD_GRAYSCALE)
        if image is None or mask is None:
            raise SystemExit(f"{self.folder}: cannot read image or mask of {case}")
        if image.shape[:2] != mask.shape:
            raise SystemExit(f"{case}: image {image.shape[:2]} and mask {mask.shape} differ in size")
        if not self.compat:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        # a grey file comes back as three equal channels: keep one (every step below works per channel alike)
        if (image[..., 0] == image[..., 1]).all() and (image[..., 0] == image[..., 2]).all():
            image = image[..., :1].copy()
        return image, mask

    def get(self, case):
        if self.cache is None:
            return self._read(case)
        if case not in self.cache:
            self.cache[case] = self._read(case)
        return self.cache[case]


def resize(image, mask, size):
    """albumentations Resize: unchanged when already that size, else cv2.resize (INTER_LINEAR / INTER_NEAREST)."""
    if image.shape[:2] != (size, size):
        channels = image.shape[2]
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
        if image.ndim == 2:  # cv2 drops a single channel axis
            image = image[..., None]
        assert image.shape[2] == channels
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
    return image, mask


def rotate90_flip(image, mask):
    """Compose -> RandomRotate90() -> Flip(), drawing python `random` as albumentations 1.2.0 does."""
    random.random()  # Compose(p=1.0) draws its own need_to_run
    if random.random() < 0.5:  # RandomRotate90, p 0.5
        k = random.randint(0, 3)  # get_params: {"factor": random.randint(0, 3)}
        image, mask = np.rot90(image, k), np.rot90(mask, k)
    if random.random() < 0.5:  # Flip, p 0.5
        d = random.randint(-1, 1)  # cv2.flip code: -1 both, 0 vertical (rows), 1 horizontal (columns)
        if d in (0, -1):
            image, mask = image[::-1], mask[::-1]
        if d in (1, -1):
            image, mask = image[:, ::-1], mask[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def normalize(image, compat):
    """albumentations Normalize (ImageNet, max pixel value 255) on HWC uint8 -> CHW float32 with 3 channels."""
    x = image.astype(np.float32)
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    x -= np.array(IMAGENET_MEAN, np.float32) * 255.0
    x *= np.reciprocal(np.array(IMAGENET_STD, np.float32) * 255.0)
    if compat:
        x /= 255.0  # the official dataset.py divides the normalised image by 255 once more
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def make_dataset_class():
    class BusiDataset(torch.utils.data.Dataset):
        def __init__(self, originals, ids, size, train, compat):
            self.originals, self.ids, self.size, self.train, self.compat = originals, ids, size, train, compat

        def __len__(self):
            return len(self.ids)

        def __getitem__(self, idx):
            image, mask = self.originals.get(self.ids[idx])
            if self.train:
                image, mask = rotate90_flip(image, mask)
                random.random()  # Resize (p 1) draws too
            image, mask = resize(image, mask, self.size)
            if self.train:
                random.random()  # and Normalize (p 1); the official validation draws in its own worker process
            x = torch.from_numpy(normalize(image, self.compat))
            label = torch.from_numpy((mask.astype(np.float32) / 255.0)[None])
            return {"image": x, "label": label}

    return BusiDataset


# ---------------------------------------------------------------- metrics

def iou_score(output, target):
    """The official utils/metrics.py iou_score for one image: IoU, Dice, F1 (truth = target > 0.5, see above)."""
    pred = (torch.sigmoid(output) > 0.5).numpy()
    truth = (target > 0.5).numpy()
    tp = int(np.count_nonzero(pred & truth))
    union = int(np.count_nonzero(pred | truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    iou = (tp + 1e-5) / (union + 1e-5)
    dice = 2 * iou / (iou + 1)
    se = tp / (tp + fn + 1e-6)
    pc = tp / (tp + fp + 1e-6)
    f1 = 2 * se * pc / (se + pc + 1e-6)
    return iou, dice, f1


def validate(model, loader):
    model.eval()
    totals, n = np.zeros(3), 0
    with torch.no_grad():
        for batch in loader:
            output = model(batch["image"])
            totals += iou_score(output, batch["label"])
            n += 1
    return [float(v) for v in totals / max(1, n)]


# ---------------------------------------------------------------- training

def train(a):
    t_load = time.perf_counter()
    train_ids, val_ids = read_split(a.train_split), read_split(a.val_split)
    originals = Originals(a.dataset, a.compat, cache=not a.no_cache)
    dataset = make_dataset_class()
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(1)
    seed_torch(a.seed)
    db_train = dataset(originals, train_ids, a.size, True, a.compat)
    db_val = dataset(originals, val_ids, a.size, False, a.compat)
    trainloader = torch.utils.data.DataLoader(db_train, batch_size=a.batch, shuffle=True, num_workers=0, drop_last=False)
    valloader = torch.utils.data.DataLoader(db_val, batch_size=1, shuffle=False, num_workers=0)
    if not a.no_cache:
        for case in train_ids + val_ids:
            originals.get(case)
    model = mobileutr(in_channels=3, num_classes=1, drop_path=a.drop_path)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=1e-4)
    iterations = len(trainloader)
    assert iterations == math.ceil(len(train_ids) / a.batch)
    max_iterations = iterations * a.epochs
    log(f"train_busi (official protocol{', --compat' if a.compat else ''}): {len(train_ids)} train / {len(val_ids)} val "
        f"images at {a.size}x{a.size}, batch {a.batch} ({iterations} iterations per epoch, the last of "
        f"{len(train_ids) - (iterations - 1) * a.batch}), {a.epochs} epochs (max_iterations {max_iterations}), "
        f"SGD lr {a.lr} poly after each step, seed {a.seed}, drop_path {a.drop_path}, threads {torch.get_num_threads()}, "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; data read in {time.perf_counter() - t_load:.1f} s")

    started = time.perf_counter()
    train_seconds = val_seconds = 0.0
    iter_num, images = 0, 0
    best_iou, best = 0.0, None
    history = []
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        loss_sum, loss_n = 0.0, 0
        for batch in trainloader:
            x, label = batch["image"], batch["label"]
            outputs = model(x)
            loss = segmentation_loss(outputs, label)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            lr = a.lr * (1.0 - iter_num / max_iterations) ** 0.9
            for group in optimizer.param_groups:
                group["lr"] = lr
            iter_num += 1
            loss_sum += loss.item() * x.shape[0]  # the official AverageMeter weighs by batch size
            loss_n += x.shape[0]
        images += loss_n
        t1 = time.perf_counter()
        iou, dice, f1 = validate(model, valloader)
        t2 = time.perf_counter()
        train_seconds += t1 - t0
        val_seconds += t2 - t1
        # the lr the last step of this epoch ran at (the group's lr was already set for the next step)
        lr_last = a.lr * (1.0 - max(0, iter_num - 2) / max_iterations) ** 0.9 if iter_num > 1 else a.lr
        history.append({"epoch": epoch, "lr_last": lr_last, "loss": loss_sum / loss_n, "val_iou": iou, "val_dice": dice,
                        "val_f1": f1, "train_seconds": round(t1 - t0, 3), "val_seconds": round(t2 - t1, 3)})
        if iou > best_iou:
            best_iou = iou
            best = {"epoch": epoch, "iou": iou, "dice": dice, "f1": f1}
            if a.save:
                torch.save(model.state_dict(), a.save)
        log(f"epoch {epoch}/{a.epochs}  loss {loss_sum / loss_n:.4f}  val IoU {iou * 100:.2f}  Dice {dice * 100:.2f}  "
            f"best {best_iou * 100:.2f} (epoch {best['epoch'] if best else '-'})  "
            f"train {t1 - t0:.1f} s ({loss_n / (t1 - t0):.1f} img/s)  val {t2 - t1:.1f} s")
    if best is None:
        best = {"epoch": None, "iou": 0.0, "dice": 0.0, "f1": 0.0}

    out = {
        "protocol": "official" + ("-compat" if a.compat else ""),
        "best_epoch": best["epoch"], "best_iou": best["iou"], "best_dice": best["dice"], "best_f1": best["f1"],
        "final_iou": history[-1]["val_iou"], "epochs": a.epochs, "size": a.size, "batch": a.batch,
        "train_images": len(train_ids), "val_images": len(val_ids), "iterations_per_epoch": iterations,
        "max_iterations": max_iterations, "threads": a.threads, "seed": a.seed,
        "seconds": round(time.perf_counter() - started, 3), "train_seconds": round(train_seconds, 3),
        "val_seconds": round(val_seconds, 3), "images_per_s": round(images / train_seconds, 3), "history": history,
    }
    line = json.dumps(out)
    if a.out:
        with open(a.out, "w") as f:
            f.write(line + "\n")
    print(line, flush=True)


# ---------------------------------------------------------------- synthetic data

def make_synthetic(folder, size, n_train, n_val, seed):
    """A dataset folder in the original layout: bright noisy ellipses on a darker textured background (masks =
    the ellipses), non-square images; train.txt / val.txt beside images/ and masks/0/."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    os.makedirs(os.path.join(folder, "masks", "0"), exist_ok=True)
    h, w = size, size + size // 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for part, n in (("train", n_train), ("val", n_val)):
        ids = []
        for i in range(n):
            case = f"{part}{i:03d}"
            bg = rng.uniform(40, 110) + 25 * np.sin(xx / rng.uniform(2, 6) + rng.uniform(0, 6))
            img = np.repeat(bg[..., None], 3, axis=2) + rng.normal(0, 18, (h, w, 3))
            cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
            ry, rx = rng.uniform(0.15, 0.3) * h, rng.uniform(0.15, 0.3) * w
            m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            img[m] += rng.uniform(50, 90) * np.array([1.0, 0.8, 0.6])
            cv2.imwrite(os.path.join(folder, "images", case + ".png"), np.clip(img, 0, 255).astype(np.uint8)[..., ::-1])
            cv2.imwrite(os.path.join(folder, "masks", "0", case + ".png"), m.astype(np.uint8) * 255)
            ids.append(case)
        with open(os.path.join(folder, f"{part}.txt"), "w") as f:
            f.write("\n".join(ids) + "\n")
    log(f"wrote {n_train} train + {n_val} val synthetic {w}x{h} images to {folder} (train.txt, val.txt)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--dataset", help="folder with images/<id>.<ext> and masks/0/<id>.png")
    g.add_argument("--make-synthetic", metavar="DIR", help="write a small synthetic dataset folder and exit")
    ap.add_argument("--train-split", help="training ids, one per line")
    ap.add_argument("--val-split", help="validation ids, one per line")
    ap.add_argument("--size", type=int, help="input size (default 256 as the official; --make-synthetic: image height, default 32)")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=41)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--drop-path", type=float, default=0.1, help="DropPath of the LGL bottleneck (official 0.1)")
    ap.add_argument("--compat", action="store_true", help="keep the official loader's artefacts: BGR, and /255 after Normalize")
    ap.add_argument("--no-cache", action="store_true", help="re-read every PNG each epoch, as the official loader does")
    ap.add_argument("--save", help="write the best checkpoint's state_dict here")
    ap.add_argument("--out", help="also write the result JSON line to this file")
    ap.add_argument("--train-count", type=int, default=24, help="--make-synthetic only")
    ap.add_argument("--val-count", type=int, default=8, help="--make-synthetic only")
    a = ap.parse_args()
    global torch, cv2, mobileutr, segmentation_loss
    import cv2
    if a.make_synthetic:
        make_synthetic(a.make_synthetic, a.size or 32, a.train_count, a.val_count, a.seed)
        return
    if not a.train_split or not a.val_split:
        ap.error("--dataset needs --train-split and --val-split")
    a.size = a.size or 256
    if a.size % 16 or a.size < 16:
        ap.error("--size must be a positive multiple of 16")
    if a.epochs < 1 or a.batch < 1 or a.threads < 1 or a.lr <= 0:
        ap.error("--epochs, --batch, --threads must be >= 1 and --lr > 0")
    import torch
    import torch.utils.data
    from mobileutr import mobileutr, segmentation_loss
    train(a)


if __name__ == "__main__":
    main()
