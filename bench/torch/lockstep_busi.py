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
    import torch.utils.data
    import train_busi
    from mobileutr import mobileutr, segmentation_loss
    train_busi.torch, train_busi.cv2 = torch, cv2
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(1)

    # train_busi's dataset with train=False: resize + normalise only, the official validation path
    dataset = train_busi.make_dataset_class()
    originals = train_busi.Originals(a.dataset, False, cache=True)
    train_set = dataset(originals, train_busi.read_split(a.train_split), a.size, False, False)
    val_set = dataset(originals, train_busi.read_split(a.val_split), a.size, False, False)
    train = [train_set[i] for i in range(len(train_set))]
    torch.manual_seed(a.seed)
    model = mobileutr(3, 1, drop_path=0.0)
    save_safetensors(a.init_out, model.state_dict())
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=1e-4)
    batches = [train[i:i + a.batch] for i in range(0, len(train), a.batch)]
    losses, lrs = [], []
    for step in range(a.steps):
        batch = batches[step % len(batches)]
        x = torch.stack([s["image"] for s in batch])
        y = torch.stack([s["label"] for s in batch])
        lrs.append(optimizer.param_groups[0]["lr"])
        loss = segmentation_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for group in optimizer.param_groups:  # the official timing: set after the step from the completed count
            group["lr"] = a.lr * (1.0 - step / a.schedule_steps) ** 0.9
        losses.append(loss.item())
    val_iou = train_busi.validate(model, torch.utils.data.DataLoader(val_set, batch_size=1, shuffle=False, num_workers=0))[0]
    print(json.dumps({"losses": losses, "lrs": lrs, "val_iou": val_iou}), flush=True)


if __name__ == "__main__":
    main()
