"""Load an "f32le-bundle-v1" fixture bundle (NAME.json + NAME.bin) into torch tensors.

NAME.json: {format, bin, sha256, meta, tensors: [{name, shape, offset, nbytes, orig_dtype}]};
NAME.bin: raw little-endian float32, C order. int64 buffers (BatchNorm num_batches_tracked)
are stored as float32 and converted back.
"""
import hashlib
import json
import os

import numpy as np
import torch

FIXTURES = os.environ.get(
    "MOBILEUTR_FIXTURES",
    os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/fixtures")))


def load_bundle(name, directory=FIXTURES, verify=True):
    """load_bundle('mobileutr_seed0.io64') -> (dict name -> tensor, meta dict)"""
    base = name if os.path.isabs(name) else os.path.join(directory, name)
    with open(base + ".json") as f:
        spec = json.load(f)
    with open(base + ".bin", "rb") as f:
        raw = f.read()
    if verify and spec.get("sha256") and hashlib.sha256(raw).hexdigest() != spec["sha256"]:
        raise ValueError(f"{base}.bin: sha256 mismatch")
    out = {}
    for t in spec["tensors"]:
        n = int(np.prod(t["shape"], dtype=np.int64))
        if t["nbytes"] != 4 * n:
            raise ValueError(f"{t['name']}: nbytes {t['nbytes']} != 4*{n}")
        a = np.frombuffer(raw, dtype="<f4", count=n, offset=t["offset"]).reshape(t["shape"])
        x = torch.from_numpy(a.copy())
        if t.get("orig_dtype") == "int64":
            x = x.round().to(torch.int64)
        out[t["name"]] = x
    return out, spec.get("meta", {})
