# Small NIfTI fixtures for test/data/volume/nifti.test.ts, written ONCE by hand with Debian 12's python3-nibabel
# (5.0.0) and numpy 1.24.2, together with the facts nibabel reads back from them (pasted into the test):
#
#   cd /work/main/test/data/volume && /usr/bin/python3 make-nifti-fixtures.py
#
# Nothing runs this file in tests or at run time (Python is no dependency).
import hashlib, json
import numpy as np, nibabel as nib

def quat_affine(zooms, offset, angle_deg, axis):
    a = np.deg2rad(angle_deg); c, s = np.cos(a), np.sin(a)
    R = {'z': [[c, -s, 0], [s, c, 0], [0, 0, 1]], 'x': [[1, 0, 0], [0, c, -s], [0, s, c]]}[axis]
    A = np.eye(4); A[:3, :3] = np.array(R) @ np.diag(zooms); A[:3, 3] = offset
    return A

rng = np.random.default_rng(9)
out = {}
def save(name, img, **extra):
    nib.save(img, f'fixtures/{name}')
    back = nib.load(f'fixtures/{name}')
    d = np.asarray(back.get_fdata(), dtype=np.float64)
    if d.ndim == 4: d = d[..., extra.get('volume', 0)]
    h = back.header
    out[name] = {'dims': list(map(int, back.shape[:3])), 'spacing': [float(z) for z in h.get_zooms()[:3]], 'affine': back.affine.tolist(),
                 'axcodes': ''.join(nib.aff2axcodes(back.affine)), 'datatype': str(back.get_data_dtype()), 'endian': h.endianness,
                 'sum': float(d.sum()), 'sumSq': float((d * d).sum()), 'sha256': hashlib.sha256(d.astype('<f4').tobytes(order='F')).hexdigest(), **extra}

# NIfTI-2, big endian, int16 with scl_slope 0.5 / scl_inter -10, qform only (code 1), rotated 30 degrees about z, qfac -1
A = quat_affine([0.8, 0.9, 2.5], [-12.5, 30.25, 7.0], 30, 'z') @ np.diag([1, 1, -1, 1])
img = nib.Nifti2Image(rng.integers(-300, 300, (5, 4, 3)).astype('>i2'), None, nib.Nifti2Header(endianness='>'))
img.header.set_qform(A, code=1); img.header.set_sform(None, code=0)
img.set_data_dtype('>i2'); img.header.set_slope_inter(0.5, -10)
save('n2_be_int16_scaled_qform.nii', img)

# NIfTI-1, big endian, float64, gzip; sform (code 2) and a different qform (code 1): the sform wins
img = nib.Nifti1Image(rng.normal(100, 40, (4, 3, 6)).astype('>f8'), None, nib.Nifti1Header(endianness='>'))
img.set_data_dtype('>f8'); img.header.set_qform(np.diag([2.0, 2.0, 2.0, 1.0]), code=1)
img.header.set_sform(quat_affine([1.5, 1.5, 3.0], [10, -20, 30], 90, 'x'), code=2)
save('n1_be_float64_sform.nii.gz', img)

# NIfTI-1 little endian uint16, anisotropic, qform with a 90-degree turn about z (voxel axes permuted vs RAS)
img = nib.Nifti1Image(rng.integers(0, 4000, (6, 5, 4)).astype('<u2'), None)
img.header.set_qform(quat_affine([0.7, 1.1, 4.0], [5, 6, 7], 90, 'z'), code=1); img.header.set_sform(None, code=0)
save('n1_uint16_qform_rot90.nii', img)

# NIfTI-1 4-D int8, 3 volumes; facts of volume 1
img = nib.Nifti1Image(rng.integers(-100, 100, (3, 4, 2, 3)).astype('i1'), np.diag([1.0, 2.0, 3.0, 1.0]))
save('n1_4d_int8.nii.gz', img, volume=1)

for k, v in out.items():
    print(f"  {json.dumps(k)}: {json.dumps(v)},")
