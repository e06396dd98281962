#!/usr/bin/env bash
# Download, here, the wheels that benchmarks/gpu_check.py needs on the device
# machine (Python 3.12, x86-64, no network there) into .whl/ at the root of
# this checkout, and keep .whl/ out of git. The machine's image already has
# CuPy, NumPy, SciPy, pytest, joblib and threadpoolctl; scikit-learn is pinned
# to the version this project is tested with. Dask and its pure-Python needs
# are there for the Dask GPU test. See gpu_check.py's docstring for the call.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
exclude="$(git rev-parse --git-common-dir)/info/exclude"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
rm -rf .whl && mkdir .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl \
  "array-api-compat==1.16.0" "array-api-strict==2.6.1" "scikit-learn==1.9.1" \
  "dask==2026.8.0" "distributed==2026.8.0" partd locket tblib tornado zict \
  importlib_metadata
du -sh .whl
