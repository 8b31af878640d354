"""One command for a GPU session: correctness on the device, training-step speed vs SpikingJelly, a short run.

    python -m devcheck --out "$OUT"            # repo root, on the GPU machine (<= 8 min on one H200)
    python -m devcheck --dry-run --out /tmp/dc # repo root, tiny sizes on this CPU
    bash devcheck/run.sh                       # the GPU session's one command (installs the carried wheels first)

Three parts, each recorded in ``device_check.json`` and summarised in ``device_check.md`` (both in
``--out``, default ``$OUT``). A part that cannot run (no SpikingJelly, no GPU, no preset, out of
time) is recorded as ``"skipped: <reason>"`` or ``"error: <reason>"`` and the others still run.

a. **tests**: the device-independent correctness tests under ``JAX_PLATFORMS=cuda`` (``cpu`` in a
   dry run), named once in ``plan.py`` (this package) (a CI test checks that they exist): a quick pair
   first, then LIF vs NumPy, fast paths equal, transplant, KD loss and the sharded-step test
   where the backend has its 8 devices; plus this script's own
   **sharded check**: one training step of a tiny Spiking ResNet on a mesh over all devices of
   the backend vs the same step on the CPU (float32, ``highest`` matmul precision), loss and
   parameters compared (one H200: a one-device mesh; the 8-device test needs 8 devices).
b. **speed**: one SGD step of the CIFAR Spiking ResNet-18 (width 64), T = 4, 1, 6 at batch 128 and
   64 (in that order of priority), snnjax (``benchmarks/train_step.py`` with the library's
   defaults: unrolled LIF, ``conv_grad=auto``) in float32 and bfloat16 vs SpikingJelly 2.0
   (``benchmarks/spikingjelly_step.py``) with its Triton/native LIF kernel (``auto``) and its torch
   reference LIF (``torch``), each in float32 and AMP bfloat16 / float16. Per row: median step
   time, images*T/s, peak device memory, the step's FLOPs (counted analytically for the model, and
   XLA's own count for snnjax) and the fraction of the H200's dense bf16 peak (790 TFLOP/s) reached.
   Each framework runs in one long-lived worker process (one per SpikingJelly kernel), only one of
   them busy at a time. SpikingJelly 2.0 has no CuPy backend any more (its GPU kernels are the
   native CUDA extension, built only from source, and Triton); which kernel ran is recorded.
c. **e2e**: ``configs/idsnn.py:fashion_mnist_full`` (if the preset and the Fashion-MNIST files are
   there) for ``--e2e-epochs`` student epochs after ``--e2e-teacher-epochs`` teacher epochs, else a
   CIFAR-shaped synthetic-data run (``configs/baseline.py`` with ``data.name=synthetic``): wall time
   per epoch and accuracy.

The first two minutes stand on their own: the quick tests, then one T=4 speed row per framework,
are written to ``--out`` as each finishes, before the sharded check, the full tests, the other
speed rows and the e2e run. The whole run keeps to ``--budget-s`` (default 460 s): speed rows left when time runs out are
recorded as skipped, and the e2e run gets what is left (at most ``--e2e-timeout-s``).
"""

from __future__ import annotations

import pathlib
import sys

# The repository root holds this package, snnjax (the FLOP model's stage table) and benchmarks/ (the step
# scripts); ``python -m devcheck`` run there has it on sys.path already, a run from elsewhere gets it here.
_ROOT = str(pathlib.Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from devcheck.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
