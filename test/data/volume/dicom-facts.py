# Facts pydicom 2.3.1 (Debian 12; GDCM and Pillow/OpenJPEG as decoders) reads from fixtures/dicom/*: slices ordered
# by ImagePositionPatient along the normal, laid out as dcm2niix does (i = column, j = rows - 1 - row, k), rescaled;
# sum, sum of squares and sha256 of the float32 volume (i fastest), the affine (RAS+), and the transfer syntax.
# Run by make-dicom-fixtures.sh, once, by hand; never by the tests.
import glob, hashlib, json, os
import numpy as np, pydicom

out = {}
for d in sorted(glob.glob('fixtures/dicom/*')):
    ds = [pydicom.dcmread(f) for f in glob.glob(f'{d}/*.dcm')]
    iop = np.array(ds[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    ds.sort(key=lambda x: float(np.dot(normal, np.array(x.ImagePositionPatient, dtype=float))))
    rows = int(ds[0].Rows)
    vol = np.stack([x.pixel_array.astype(np.float64) * float(x.RescaleSlope) + float(x.RescaleIntercept) for x in ds], axis=-1)
    vol = vol[::-1, :, :].transpose(1, 0, 2)
    dr, dc = (float(v) for v in ds[0].PixelSpacing)
    p0 = np.array(ds[0].ImagePositionPatient, dtype=float)
    step = (np.array(ds[-1].ImagePositionPatient, dtype=float) - p0) / (len(ds) - 1)
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * dc; lps[:3, 1] = -iop[3:] * dr; lps[:3, 2] = step; lps[:3, 3] = p0 + (rows - 1) * dr * iop[3:]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    out[os.path.basename(d)] = {'syntax': str(ds[0].file_meta.TransferSyntaxUID), 'dims': list(vol.shape), 'affine': ras.tolist(),
        'sum': float(vol.sum()), 'sumSq': float((vol * vol).sum()), 'sha256': hashlib.sha256(vol.astype('<f4').tobytes(order='F')).hexdigest()}
for k, v in out.items():
    print(f"  {json.dumps(k)}: {json.dumps(v)},")
