"""PyTorch slice-wise inference of a whole volume, for `npm run bench:volume`; one JSON line on stdout.

  /usr/bin/python3 bench/torch/volume.py --raw /tmp/ct.u8 --dims 122,101,112 --size 256 --classes 9 \
      --threads 1 --batch 4 --runs 1

--raw holds the canonical (RAS+) volume as 8-bit codes over the intensity clip range, i fastest (what our
pipeline quantizes before slicing; bench/volume.ts writes it). Per batch of axial slices: codes -> [0, 1]
(the ct preset: value = q/255 * scale + offset), F.interpolate bilinear to size x size (align_corners=False,
no antialias: cv2 INTER_LINEAR's geometry), the network (eval, torch.inference_mode), argmax over classes at
network size, F.interpolate nearest back to the slice plane, stored in the output volume. The network has
random weights (seed 41): timings do not depend on them. One untimed warm-up batch, then --runs timed volumes;
the median volume is reported. OPENBLAS_NUM_THREADS defaults to 1 (see bench.py).
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--dims", required=True, help="nx,ny,nz of the canonical volume")
    ap.add_argument("--model", default="mobileutr")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--classes", type=int, default=9)
    ap.add_argument("--in-channels", type=int, default=1)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--offset", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numpy as np
    import torch
    import torch.nn.functional as F
    from mobileutr import build

    torch.set_num_threads(a.threads)
    torch.manual_seed(41)
    nx, ny, nz = (int(v) for v in a.dims.split(","))
    codes = np.fromfile(a.raw, dtype=np.uint8)
    if codes.size != nx * ny * nz:
        ap.error(f"{a.raw}: {codes.size} bytes, dims {nx}x{ny}x{nz} need {nx * ny * nz}")
    volume = torch.from_numpy(codes.reshape(nz, ny, nx))  # axial slice k = volume[k], H = ny, W = nx
    model = build(a.model, in_channels=a.in_channels, num_classes=a.classes).eval()
    network_ms = [0.0]

    def run_batch(k0, out):
        k1 = min(k0 + a.batch, nz)
        x = volume[k0:k1].unsqueeze(1).float() * (a.scale / 255.0) + a.offset
        x = F.interpolate(x, size=(a.size, a.size), mode="bilinear", align_corners=False)
        if a.in_channels != 1:
            x = x.repeat(1, a.in_channels, 1, 1)
        t = time.perf_counter()
        logits = model(x)
        network_ms[0] += (time.perf_counter() - t) * 1000.0
        classes = logits.argmax(dim=1, keepdim=True).float()
        back = F.interpolate(classes, size=(ny, nx), mode="nearest")
        out[k0:k1] = back[:, 0].to(torch.uint8)

    with torch.inference_mode():
        run_batch(0, torch.empty(nz, ny, nx, dtype=torch.uint8))  # warm-up
        seconds, network = [], []
        for _ in range(a.runs):
            out = torch.empty(nz, ny, nx, dtype=torch.uint8)
            network_ms[0] = 0.0
            t0 = time.perf_counter()
            for k0 in range(0, nz, a.batch):
                run_batch(k0, out)
            seconds.append(time.perf_counter() - t0)
            network.append(network_ms[0])
    s = statistics.median(seconds)
    print(json.dumps({
        "bench": "torch-volume", "model": a.model, "size": a.size, "classes": a.classes, "dims": [nx, ny, nz],
        "threads": torch.get_num_threads(), "batch": a.batch, "runs": a.runs,
        "seconds_per_volume": round(s, 3), "slices_per_s": round(nz / s, 2),
        "network_ms": round(statistics.median(network), 1), "torch": torch.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
