"""Test session setup: 8 fake CPU devices so sharding tests run on any machine.

XLA reads XLA_FLAGS once, at backend start, so this must run before anything imports jax.
"""

import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from snnjax import runtime  # noqa: E402  (imports jax, starts no backend)

runtime.use_eigen_convolutions()  # as launch.py does
