#!/usr/bin/env bash
# Prepare what the device check (devcheck/run.sh) needs on the GPU machine and its image lacks, in two
# git-ignored folders of the repo root that the device `run` call carries:
#   .whl/      wheels (Python 3.12, manylinux x86-64): ml_collections, tensorboardX, loguru and
#              spikingjelly 2.0.0 (pure-Python wheels; torch, triton, jax, flax, optax, orbax,
#              absl-py, PyYAML, protobuf, scikit-learn, pytest, pytest-xdist are in the image);
#   .devdata/  the four Fashion-MNIST IDX files (for configs/idsnn.py:fashion_mnist_full; no network there).
# Usage (repo root):  bash devcheck/fetch_wheels.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
grep -qx "/.whl/" .gitignore && grep -qx "/.devdata/" .gitignore || { echo "add /.whl/ and /.devdata/ to .gitignore" >&2; exit 1; }
PY=${PYTHON:-python3}
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  ml_collections==1.1.0 tensorboardX==2.6.5 loguru==0.7.3 spikingjelly==2.0.0
# Requirements of those wheels that the image lacks (`unzip -p .whl/NAME-*.whl '*/METADATA' | grep ^Requires-Dist`):
# none beyond the image's packages; spikingjelly's declared heavy ones (torchvision, tensorboard, scipy, h5py,
# matplotlib, ...) are there or not imported by the code the check runs.
mkdir -p .devdata/fashion_mnist
src=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
if [ -f "$src/train-images-idx3-ubyte.gz" ]; then
  cp -u "$src"/*-ubyte.gz .devdata/fashion_mnist/
else
  echo "no Fashion-MNIST files in $src: the e2e part will fall back to synthetic data" >&2
fi
ls -la .whl .devdata/fashion_mnist
du -sh .whl .devdata
