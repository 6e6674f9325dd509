"""Trains the PyTorch MobileUtr reference with our trainer's protocol (DESIGN.md §4-§5) on pixels
that the TypeScript side already decoded and resized, so both sides see identical inputs.

  /usr/bin/python3 bench/torch/train_busi.py --data DIR [--epochs 40] [--batch 8] [--lr 0.01]
                                             [--seed 41] [--threads 1] [--drop-path 0.1]
  /usr/bin/python3 bench/torch/train_busi.py --make-synthetic DIR [--size 32] [--train-count 24] [--val-count 8]

DIR/index.json: {"size": S, "channels": 3,
                 "train": {"count": N, "ids": [...], "images": "train_images.u8", "masks": "train_masks.u8"},
                 "val": {...same...}}
images: N*S*S*3 uint8 (HWC, RGB, row-major), masks: N*S*S uint8 (0/1; anything > 0 is foreground).
bench/repro-busi.ts --torch writes such a folder and runs this script on it.

Protocol: MobileUtr (1 class, DropPath 0.1 in the LGL bottleneck, train mode), torch.manual_seed(seed)
for init and DropPath; per epoch a shuffle and per-sample augmentation from numpy's
default_rng([seed, epoch]): p 0.5 rotate clockwise by 90*k, k uniform in {1,2,3}; then p 0.5 flip
horizontally, vertically or both (uniform); image/255 normalised with ImageNet mean/std; batches of
--batch with drop_last; loss 0.5*BCEWithLogits(mean) + 1 - mean soft Dice (smoothing 1e-5);
SGD(momentum 0.9, weight_decay 1e-4) with lr = base*(1 - it/max_it)^0.9 set before each step
(it 0-based, max_it = epochs*iters_per_epoch). After every epoch: eval mode, batch 1, prediction
logit > 0, truth mask > 0, per-image IoU/Dice/F1 (explicit empty-mask rules as src/eval/metrics.ts)
averaged over images; the best epoch is the first with the highest mean val IoU.

stderr: one progress line per epoch. stdout: one JSON line at the end:
  {"best_epoch", "best_iou", "best_dice", "best_f1", "final_iou", "epochs", "seconds",
   "images_per_s", "history": [{"epoch", "loss", "val_iou"}, ...]}
seconds = wall time of the whole run (training + validation, after loading the data);
images_per_s = training images / training seconds (validation excluded), like our metrics.csv.
OPENBLAS_NUM_THREADS defaults to 1 (see bench.py).
"""
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
torch = mobileutr = segmentation_loss = None  # imported in main() after OPENBLAS_NUM_THREADS is set


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data

def load_part(folder, index, part):
    s, c = index["size"], index["channels"]
    info = index[part]
    n = int(info["count"])
    images = np.fromfile(os.path.join(folder, info["images"]), dtype=np.uint8)
    masks = np.fromfile(os.path.join(folder, info["masks"]), dtype=np.uint8)
    if images.size != n * s * s * c or masks.size != n * s * s:
        raise SystemExit(f"{part}: expected {n}x{s}x{s}x{c} image bytes and {n}x{s}x{s} mask bytes, "
                         f"got {images.size} and {masks.size}")
    return images.reshape(n, s, s, c), (masks.reshape(n, s, s) > 0).astype(np.uint8)


def load_data(folder):
    with open(os.path.join(folder, "index.json")) as f:
        index = json.load(f)
    if index.get("channels") != 3:
        raise SystemExit(f"{folder}/index.json: channels must be 3, got {index.get('channels')}")
    if index["size"] % 16:
        raise SystemExit(f"{folder}/index.json: size must be divisible by 16, got {index['size']}")
    return index["size"], load_part(folder, index, "train"), load_part(folder, index, "val")


def augment(image, mask, rng):
    """src/data/augment.ts randomRotateFlip: its rot90 is clockwise (dst[y][x] = src[n-1-x][y])."""
    if rng.random() < 0.5:
        k = 1 + int(rng.integers(3))
        image, mask = np.rot90(image, -k, axes=(0, 1)), np.rot90(mask, -k, axes=(0, 1))
    if rng.random() < 0.5:
        which = int(rng.integers(3))  # 0: horizontal, 1: vertical, 2: both
        if which != 1:
            image, mask = image[:, ::-1], mask[:, ::-1]
        if which != 0:
            image, mask = image[::-1], mask[::-1]
    return image, mask


def to_tensors(images, masks):
    """uint8 [B,S,S,3] and 0/1 [B,S,S] -> normalised float32 [B,3,S,S] and target [B,1,S,S]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = ((x - mean) / std).contiguous()
    t = torch.from_numpy(np.ascontiguousarray(masks)).unsqueeze(1).float()
    return x, t


# ---------------------------------------------------------------- metrics

def scores(pred, truth):
    """Per-image IoU, Dice, F1 of boolean masks, as src/eval/metrics.ts scoreMasks."""
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    iou = (tp + 1e-5) / (tp + fp + fn + 1e-5)
    se = 1.0 if tp + fn == 0 else tp / (tp + fn + 1e-6)
    pc = 1.0 if tp + fp == 0 else tp / (tp + fp + 1e-6)
    if tp + fn == 0 and tp + fp == 0:
        f1 = 1.0
    elif tp + fn == 0 or tp + fp == 0:
        f1 = 0.0
    else:
        f1 = 2 * se * pc / (se + pc + 1e-6)
    return iou, 2 * iou / (iou + 1), f1


def validate(model, images, masks):
    model.eval()
    totals = np.zeros(3)
    with torch.no_grad():
        for i in range(images.shape[0]):
            x, _ = to_tensors(images[i:i + 1], masks[i:i + 1])
            pred = (model(x)[0, 0] > 0).numpy()
            totals += scores(pred, masks[i] > 0)
    model.train()
    iou, dice, f1 = totals / max(1, images.shape[0])
    return float(iou), float(dice), float(f1)


# ---------------------------------------------------------------- training

def train(a):
    size, (tr_img, tr_mask), (va_img, va_mask) = load_data(a.data)
    n = tr_img.shape[0]
    iters = n // a.batch
    if iters < 1:
        raise SystemExit(f"{n} training images are fewer than one batch of {a.batch}")
    if va_img.shape[0] < 1:
        raise SystemExit("the validation set is empty")
    max_it = a.epochs * iters
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = mobileutr(in_channels=3, num_classes=1, drop_path=a.drop_path)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=1e-4)
    log(f"train_busi: {n} train / {va_img.shape[0]} val images at {size}x{size}, batch {a.batch} "
        f"({iters} iters/epoch), {a.epochs} epochs, SGD lr {a.lr} poly, seed {a.seed}, "
        f"drop_path {a.drop_path}, threads {torch.get_num_threads()}, "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")

    started = time.perf_counter()
    train_seconds = 0.0
    it = 0
    history, best = [], None
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        rng = np.random.default_rng([a.seed, epoch])
        order = rng.permutation(n)
        loss_sum = 0.0
        for b in range(iters):
            idx = order[b * a.batch:(b + 1) * a.batch]
            pairs = [augment(tr_img[i], tr_mask[i], rng) for i in idx]
            x, t = to_tensors(np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))
            lr = a.lr * (1 - it / max_it) ** 0.9
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss = segmentation_loss(model(x), t)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            it += 1
        t1 = time.perf_counter()
        train_seconds += t1 - t0
        iou, dice, f1 = validate(model, va_img, va_mask)
        t2 = time.perf_counter()
        loss_mean = loss_sum / iters
        history.append({"epoch": epoch, "loss": loss_mean, "val_iou": iou})
        if best is None or iou > best["iou"]:
            best = {"epoch": epoch, "iou": iou, "dice": dice, "f1": f1}
        log(f"epoch {epoch}/{a.epochs}  loss {loss_mean:.4f}  val IoU {iou * 100:.2f}  "
            f"best {best['iou'] * 100:.2f} (epoch {best['epoch']})  "
            f"train {t1 - t0:.2f} s ({iters * a.batch / (t1 - t0):.1f} img/s)  val {t2 - t1:.2f} s")

    out = {
        "best_epoch": best["epoch"], "best_iou": best["iou"], "best_dice": best["dice"],
        "best_f1": best["f1"], "final_iou": history[-1]["val_iou"], "epochs": a.epochs,
        "seconds": round(time.perf_counter() - started, 3),
        "images_per_s": round(max_it * a.batch / train_seconds, 3), "history": history,
    }
    print(json.dumps(out), flush=True)


# ---------------------------------------------------------------- synthetic data

def make_synthetic(folder, size, n_train, n_val, seed):
    """Bright noisy ellipses on a darker textured background (masks = the ellipses), a few empty."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    index = {"size": size, "channels": 3}
    for part, n in (("train", n_train), ("val", n_val)):
        images = np.empty((n, size, size, 3), np.uint8)
        masks = np.zeros((n, size, size), np.uint8)
        for i in range(n):
            bg = rng.uniform(40, 110) + 25 * np.sin(xx / rng.uniform(2, 6) + rng.uniform(0, 6))
            img = np.repeat(bg[..., None], 3, axis=2) + rng.normal(0, 18, (size, size, 3))
            if i % 6 != 5:  # every 6th image has an empty mask
                cy, cx = rng.uniform(0.25, 0.75, 2) * size
                ry, rx = rng.uniform(0.12, 0.3, 2) * size
                m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
                img[m] += rng.uniform(50, 90) * np.array([1.0, 0.8, 0.6])
                masks[i] = m
            images[i] = np.clip(img, 0, 255).astype(np.uint8)
        images.tofile(os.path.join(folder, f"{part}_images.u8"))
        masks.tofile(os.path.join(folder, f"{part}_masks.u8"))
        index[part] = {"count": n, "ids": [f"{part}{i:03d}" for i in range(n)],
                       "images": f"{part}_images.u8", "masks": f"{part}_masks.u8"}
    with open(os.path.join(folder, "index.json"), "w") as f:
        json.dump(index, f)
    log(f"wrote {n_train} train + {n_val} val synthetic {size}x{size} images to {folder}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--data", help="folder with index.json and the .u8 files")
    g.add_argument("--make-synthetic", metavar="DIR", help="write a small synthetic data folder and exit")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=41)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--drop-path", type=float, default=0.1, help="DropPath of the LGL bottleneck (official 0.1)")
    ap.add_argument("--size", type=int, default=32, help="--make-synthetic only")
    ap.add_argument("--train-count", type=int, default=24, help="--make-synthetic only")
    ap.add_argument("--val-count", type=int, default=8, help="--make-synthetic only")
    a = ap.parse_args()
    if a.make_synthetic:
        if a.size % 16 or a.size < 16:
            ap.error("--size must be a positive multiple of 16")
        make_synthetic(a.make_synthetic, a.size, a.train_count, a.val_count, a.seed)
        return
    if a.epochs < 1 or a.batch < 1 or a.threads < 1 or a.lr <= 0:
        ap.error("--epochs, --batch, --threads must be >= 1 and --lr > 0")
    # Debian's OpenBLAS is the pthread build: its threads fight PyTorch's OpenMP threads (bench.py).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    global torch, mobileutr, segmentation_loss
    import torch
    from mobileutr import mobileutr, segmentation_loss
    train(a)


if __name__ == "__main__":
    main()
