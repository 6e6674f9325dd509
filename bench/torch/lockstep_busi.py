"""PyTorch side of `npm run bench:lockstep`: the official network and loss, trained on BUSI images in a FIXED order
(the split file's order, batch by batch, the last batch smaller as with drop_last=False), without augmentation and
without DropPath, so that ours can take exactly the same steps from exactly the same start.

  /usr/bin/python3 bench/torch/lockstep_busi.py --dataset DIR --train-split FILE --val-split FILE --init-out W.safetensors
        [--size 128] [--steps 57] [--schedule-steps 1140] [--batch 8] [--lr 0.01] [--seed 41] [--threads 2]

Writes the seeded initial state_dict to --init-out (safetensors, written here without the safetensors package) and
prints one JSON line: {"losses": [loss of each step], "lrs": [...], "val_iou": mean IoU on --val-split after the
steps (eval mode, batch 1, the official iou_score)}. The data path, the loss and the lr timing are train_busi.py's
(the official protocol); only the random parts are switched off.
"""
import argparse
import json
import os
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np


def save_safetensors(path, state_dict):
    header, blobs, offset = {}, [], 0
    for name, tensor in state_dict.items():
        a = tensor.detach().cpu().numpy()
        dtype = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}[a.dtype]
        data = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for data in blobs:
            f.write(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--train-split", required=True)
    ap.add_argument("--val-split", required=True)
    ap.add_argument("--init-out", required=True)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=57)
    ap.add_argument("--schedule-steps", type=int, default=57 * 20, help="max_iterations of the poly schedule")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=41)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import cv2
    import torch
    import train_busi
    from mobileutr import mobileutr, segmentation_loss
    train_busi.torch, train_busi.cv2 = torch, cv2
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(1)

    originals = train_busi.Originals(a.dataset, False, cache=True)

    def sample(case):
        image, mask = train_busi.resize(*originals.get(case), a.size)
        return torch.from_numpy(train_busi.normalize(image, False)), torch.from_numpy((mask.astype(np.float32) / 255.0)[None])

    train_ids, val_ids = train_busi.read_split(a.train_split), train_busi.read_split(a.val_split)
    train = [sample(c) for c in train_ids]
    torch.manual_seed(a.seed)
    model = mobileutr(3, 1, drop_path=0.0)
    save_safetensors(a.init_out, model.state_dict())
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=1e-4)
    batches = [train[i:i + a.batch] for i in range(0, len(train), a.batch)]
    losses, lrs = [], []
    for step in range(a.steps):
        batch = batches[step % len(batches)]
        x = torch.stack([s[0] for s in batch])
        y = torch.stack([s[1] for s in batch])
        lrs.append(optimizer.param_groups[0]["lr"])
        loss = segmentation_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for group in optimizer.param_groups:  # the official timing: set after the step from the completed count
            group["lr"] = a.lr * (1.0 - step / a.schedule_steps) ** 0.9
        losses.append(loss.item())
    model.eval()
    ious = []
    with torch.no_grad():
        for case in val_ids:
            x, y = sample(case)
            ious.append(train_busi.iou_score(model(x[None]), y[None])[0])
    print(json.dumps({"losses": losses, "lrs": lrs, "val_iou": float(np.mean(ious))}), flush=True)


if __name__ == "__main__":
    main()
