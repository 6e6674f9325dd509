"""PyTorch CPU timings of MobileUtr / MobileUtr-L / U-Net, one JSON line on stdout per run.

  /usr/bin/python3 bench/torch/bench.py infer --model mobileutr --size 256 --batch 1 --threads 1 --iters 20 --warmup 3
  /usr/bin/python3 bench/torch/bench.py train --model mobileutr --size 256 --batch 8 --threads 1 --iters 5 --warmup 1

infer: eval mode under torch.inference_mode(), random N(0,1) input.
train: one step = train-mode forward (DropPath 0.1 as in the official code) + loss
  0.5*BCEWithLogits(mean) + 1 - mean soft Dice + backward + SGD(lr 0.01, momentum 0.9,
  weight_decay 1e-4), on a fixed random input and random binary target.
Both: torch.set_num_threads(T), torch.manual_seed(41); median over --iters timed runs after
--warmup untimed ones. peak_rss_mb = getrusage(RUSAGE_SELF).ru_maxrss of the whole process.
OPENBLAS_NUM_THREADS defaults to 1 (set it in the environment to override).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MODEL_NAMES = ("mobileutr", "mobileutr-l", "unet")
torch = build = count_params = segmentation_loss = None  # imported in main() after OPENBLAS_NUM_THREADS is set


def blas_library():
    """The BLAS shared object actually mapped (Debian: reference libblas vs OpenBLAS is a 5x gap)."""
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.split()[-1]}
    return ",".join(sorted("/".join(p.split("/")[-2:]) for p in libs)) or "unknown"


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def timed(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def setup(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(41)
    model = build(a.model, in_channels=3, num_classes=1)
    x = torch.randn(a.batch, 3, a.size, a.size)
    return model, x


def infer(a):
    model, x = setup(a)
    model.eval()

    def step():
        with torch.inference_mode():
            model(x)

    return model, timed(step, a.iters, a.warmup), {}


def train(a):
    model, x = setup(a)
    model.train()
    target = (torch.rand(a.batch, 1, a.size, a.size) > 0.5).float()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        loss = segmentation_loss(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())

    times = timed(step, a.iters, a.warmup)
    return model, times, {"loss_first": losses[0], "loss_last": losses[-1]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, default_batch in (("infer", 1), ("train", 8)):
        p = sub.add_parser(name)
        p.add_argument("--model", choices=MODEL_NAMES, default="mobileutr")
        p.add_argument("--size", type=int, default=256)
        p.add_argument("--batch", type=int, default=default_batch)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--iters", type=int, default=10)
        p.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    if a.size % 16 or a.iters < 1 or a.warmup < 0:
        ap.error("--size must be divisible by 16, --iters >= 1, --warmup >= 0")
    # Debian's OpenBLAS is the pthread build: its own threads fight PyTorch's OpenMP threads
    # (measured 2-5x slower and very noisy with 2+2 threads), so BLAS stays single-threaded.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    global torch, build, count_params, segmentation_loss
    import torch
    from mobileutr import build, count_params, segmentation_loss
    model, times, extra = (infer if a.cmd == "infer" else train)(a)
    med = statistics.median(times)
    key = "ms_per_batch_median" if a.cmd == "infer" else "ms_per_step_median"
    out = {
        "bench": f"torch-{a.cmd}", "model": a.model, "size": a.size, "batch": a.batch,
        "threads": torch.get_num_threads(), "iters": a.iters, "warmup": a.warmup,
        key: round(med, 3), "images_per_s": round(a.batch * 1000.0 / med, 3),
        "ms_min": round(min(times), 3), "ms_max": round(max(times), 3),
        "peak_rss_mb": round(peak_rss_mb(), 1), "params": count_params(model),
        "torch": torch.__version__, "blas": blas_library(),
        "openblas_threads": int(os.environ["OPENBLAS_NUM_THREADS"]),
    }
    out.update(extra)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
