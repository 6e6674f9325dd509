# Reference facts for test/data/volume/readers.test.ts, computed ONCE by hand with Debian 12's python3-nibabel
# (5.0.0), python3-pydicom (2.3.1, JPEG 2000 through python3-pil's OpenJPEG) and numpy 1.24.2:
#
#   cd /work/shared/datasets && /usr/bin/python3 /work/main/test/data/volume/reference-facts.py
#
# and pasted into the test. Nothing runs this file in tests or at run time (Python is no dependency).
import glob, hashlib, json, os
import numpy as np, nibabel as nib, pydicom

def facts(data, dtype):
    d = np.asarray(data, dtype=np.float64)
    f32 = d.astype('<f4').tobytes(order='F')  # voxel order i fastest, as in the file
    return {'datatype': dtype, 'sum': float(d.sum()), 'sumSq': float((d * d).sum()), 'sha256': hashlib.sha256(f32).hexdigest()}

NIFTI = ['totalseg_examples/example_ct_sm.nii.gz', 'totalseg_examples/example_ct.nii.gz', 'totalseg_examples/example_mr_sm.nii.gz',
         'totalseg_examples/example_seg.nii.gz', 'totalseg_examples/example_seg_dicom.nii.gz',
         'msd_hippocampus/imagesTr/hippocampus_001_0000.nii.gz', 'msd_hippocampus/labelsTr/hippocampus_001.nii.gz',
         'msd_hippocampus/imagesTr/hippocampus_003_0000.nii.gz', 'msd_hippocampus/labelsTr/hippocampus_003.nii.gz',
         'msd_hippocampus/imagesTr/hippocampus_136_0000.nii.gz']
out = {}
for p in NIFTI:
    img = nib.load(p)
    h = img.header
    out[p] = {'dims': list(map(int, img.shape)), 'spacing': [float(z) for z in h.get_zooms()], 'affine': img.affine.tolist(),
              'axcodes': ''.join(nib.aff2axcodes(img.affine)), 'qformCode': int(h['qform_code']), 'sformCode': int(h['sform_code']),
              **facts(img.get_fdata(), str(img.get_data_dtype()))}

# The DICOM series: slices ordered by ImagePositionPatient along the normal (row x column cosines), ascending;
# voxel (i, j, k) = column i, row (rows - 1 - j) of slice k, as dcm2niix lays it out; LPS -> RAS by negating x, y.
ds = [pydicom.dcmread(f) for f in glob.glob('totalseg_examples/example_ct_dicom/*')]
iop = np.array(ds[0].ImageOrientationPatient, dtype=float)
normal = np.cross(iop[:3], iop[3:])
ds.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=float))))
rows, cols = int(ds[0].Rows), int(ds[0].Columns)
vol = np.stack([d.pixel_array.astype(np.float64) * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in ds], axis=-1)  # rows, cols, k
vol = vol[::-1, :, :].transpose(1, 0, 2)  # i = column, j = flipped row, k
dr, dc = (float(x) for x in ds[0].PixelSpacing)
p0 = np.array(ds[0].ImagePositionPatient, dtype=float)
step = (np.array(ds[-1].ImagePositionPatient, dtype=float) - p0) / (len(ds) - 1)
lps = np.eye(4)
lps[:3, 0] = iop[:3] * dc
lps[:3, 1] = -iop[3:] * dr
lps[:3, 2] = step
lps[:3, 3] = p0 + (rows - 1) * dr * iop[3:]
ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
out['totalseg_examples/example_ct_dicom'] = {'dims': list(vol.shape), 'spacing': [dc, dr, float(np.linalg.norm(step))], 'affine': ras.tolist(),
    'axcodes': ''.join(nib.aff2axcodes(ras)), 'rawDtype': str(ds[0].pixel_array.dtype),
    'rescale': [float(ds[0].RescaleSlope), float(ds[0].RescaleIntercept)], **facts(vol, 'uint16')}
for k, v in out.items():
    print(f"  {json.dumps(k)}: {json.dumps(v)},")
