# Reference facts for test/eval/volume-surface.test.ts, computed ONCE with Debian 12's python3-scipy (1.10.1) and
# python3-numpy (1.24.2), implementing medpy.metric.binary's definitions (medpy 0.4: __surface_distances, hd, hd95,
# assd, dc) line for line:
#
#   /usr/bin/python3 test/eval/volume-facts.py
#
# and pasted into the test. Nothing runs this file in tests or at run time (Python is no dependency). The shapes are
# integer-defined (a perturbed ellipsoid: see shape()), so the test regenerates them exactly in TypeScript.
import json
import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt, generate_binary_structure

M = 0xffffffff

def hash3(x, y, z, seed):
    h = ((x * 73856093) ^ (y * 19349663) ^ (z * 83492791) ^ (seed * 2654435761)) & M
    h = h ^ (h >> 13)
    h = (h * 0x5bd1e995) & M
    return h ^ (h >> 15)

def shape(dims, s):
    # voxel [x, y, z] is set when w·(p - c)² + (hash % 64)·jitter <= r (all integers)
    x, y, z = np.meshgrid(*[np.arange(n, dtype=np.uint64) for n in dims], indexing='ij')
    q = sum(w * (p.astype(np.int64) - c) ** 2 for w, p, c in zip(s['w'], (x, y, z), s['c']))
    return q + (hash3(x, y, z, s['seed']) % 64).astype(np.int64) * s['jitter'] <= s['r']

def surface_distances(result, reference, voxelspacing=None, connectivity=1):  # medpy's __surface_distances
    result = np.atleast_1d(result.astype(bool))
    reference = np.atleast_1d(reference.astype(bool))
    footprint = generate_binary_structure(result.ndim, connectivity)
    result_border = result ^ binary_erosion(result, structure=footprint, iterations=1)
    reference_border = reference ^ binary_erosion(reference, structure=footprint, iterations=1)
    dt = distance_transform_edt(~reference_border, sampling=voxelspacing)
    return dt[result_border]

CASES = {
    'offset-anisotropic': dict(dims=(40, 36, 20), spacing=(0.8, 0.8, 3.0),
        result=dict(w=(9, 9, 100), c=(18, 17, 9), r=2200, jitter=10, seed=1),
        reference=dict(w=(9, 9, 100), c=(22, 16, 11), r=2600, jitter=12, seed=2)),
    'rough-overlap': dict(dims=(30, 44, 26), spacing=(1.25, 0.6, 2.0),
        result=dict(w=(16, 4, 9), c=(14, 22, 12), r=1800, jitter=40, seed=7),
        reference=dict(w=(25, 3, 8), c=(15, 20, 14), r=2000, jitter=35, seed=8)),
    'touching-edges-voxels': dict(dims=(24, 20, 16), spacing=(1.0, 1.0, 1.0),
        result=dict(w=(1, 1, 1), c=(2, 3, 1), r=150, jitter=2, seed=11),
        reference=dict(w=(1, 1, 2), c=(20, 18, 14), r=260, jitter=3, seed=12)),
    'plate-vs-blob': dict(dims=(32, 16, 28), spacing=(0.5, 2.0, 1.5),
        result=dict(w=(1, 400, 1), c=(16, 8, 14), r=120, jitter=1, seed=21),
        reference=dict(w=(4, 16, 4), c=(12, 7, 16), r=700, jitter=6, seed=22)),
}

out = {}
for name, case in CASES.items():
    a = shape(case['dims'], case['result'])
    b = shape(case['dims'], case['reference'])
    hd1 = surface_distances(a, b, case['spacing'])
    hd2 = surface_distances(b, a, case['spacing'])
    both = np.hstack((hd1, hd2))
    out[name] = dict(
        resultVoxels=int(a.sum()), referenceVoxels=int(b.sum()),
        resultBorder=int(hd1.size), referenceBorder=int(hd2.size),
        dice=float(2.0 * np.count_nonzero(a & b) / float(np.count_nonzero(a) + np.count_nonzero(b))),
        hd95=float(np.percentile(both, 95)), hd=float(max(hd1.max(), hd2.max())),
        assd=float(np.mean((hd1.mean(), hd2.mean()))),
        sumForward=float(hd1.sum()),
    )
print(json.dumps(out, indent=2))
