#!/bin/sh
# The DICOM fixtures of test/data/volume/dicom.test.ts, made ONCE by hand (nothing runs this in tests):
# the synthetic series of phantom.ts written as Explicit VR Little Endian by test/support/dicom.ts, then transcoded
# by Debian 12's GDCM 3.0.21 (gdcmconv) and DCMTK 3.6.7 (dcmcjpeg, dcmconv); the facts pydicom 2.3.1 (with
# python3-gdcm and python3-pil as its decoders) reads from them are printed by dicom-facts.py and pasted into the test.
#   cd test/data/volume && sh make-dicom-fixtures.sh
set -e
src=$(mktemp -d)
npx tsx write-phantom.ts "$src"
out=fixtures/dicom
rm -rf "$out" && mkdir -p "$out"
for t in implicit bigendian deflated j2k j2k-lossy jpegls jpegls-near jpeg-sv1 jpeg-p14 rle; do mkdir -p "$out/$t"; done
for f in "$src"/*.dcm; do
  b=$(basename "$f")
  dcmconv +ti "$f" "$out/implicit/$b"
  dcmconv +tb "$f" "$out/bigendian/$b"
  dcmconv +td "$f" "$out/deflated/$b"
  gdcmconv --j2k "$f" "$out/j2k/$b"
  gdcmconv --j2k --lossy -q 80 "$f" "$out/j2k-lossy/$b"
  gdcmconv --jpegls "$f" "$out/jpegls/$b"
  gdcmconv --jpegls --lossy -e 3 "$f" "$out/jpegls-near/$b"
  dcmcjpeg +e1 "$f" "$out/jpeg-sv1/$b"
  dcmcjpeg +el "$f" "$out/jpeg-p14/$b"
  gdcmconv --rle "$f" "$out/rle/$b"
done
/usr/bin/python3 dicom-facts.py
