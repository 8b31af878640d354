"""Convolutions with the same forward as XLA's and a faster kernel gradient on CPU.

``nn.Conv(..., conv_general_dilated=conv_impl(conv_grad))`` picks one of:

* ``"xla"``: ``lax.conv_general_dilated`` as it is.
* ``"split"``: XLA's forward and input gradient, bit for bit; the kernel gradient is the sum of
  XLA's kernel gradients over pieces of the batch. On XLA:CPU (jax 0.10, YNNPACK convolutions)
  the kernel gradient of a whole ``[128, 32, 32, 64]`` batch runs at a third of the forward's
  speed on one core; cut into pieces of about 2,048 output positions it runs 2-4x faster
  (``benchmarks/RESULTS.md``). The pieces are unrolled: a ``lax.scan`` over them is 10-80x slower
  on XLA:CPU.
* ``"matmul"``: XLA's forward; the kernel gradient as one im2col matmul (measured slower in the
  full step; kept for comparison).
* ``"auto"`` (the default of :func:`snnjax.models.model_config`): ``"split"`` when the program is
  traced for the CPU backend with XLA's default YNNPACK convolutions, ``"xla"`` otherwise: with
  Eigen convolutions (:func:`snnjax.runtime.use_eigen_convolutions`, which ``launch.py`` turns on)
  XLA's own kernel gradient is the fastest, and GPU/TPU convolution libraries need no help.

All take NHWC inputs and HWIO kernels with explicit padding (what ``nn.Conv`` passes for 2-D
convolutions) and give kernel gradients equal to XLA's up to float summation order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Literal

import jax
import jax.numpy as jnp

from snnjax import runtime

ConvGrad = Literal["auto", "xla", "split", "matmul"]
CONV_GRADS: tuple[str, ...] = ("auto", "xla", "split", "matmul")
DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
# Output positions (batch x height x width) per piece of the split kernel gradient: the fastest
# piece size on XLA:CPU for every ResNet-18 layer shape measured (benchmarks/RESULTS.md section 5).
SPLIT_POSITIONS = 2048

Padding = tuple[tuple[int, int], ...]


def _conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, ...], padding: Padding) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=DIMENSION_NUMBERS)


def _input_grad(x, kernel, strides, padding, g):
    return jax.vjp(lambda x_: _conv(x_, kernel, strides, padding), x)[1](g)[0]


def _kernel_grad(x, kernel, strides, padding, g):
    return jax.vjp(lambda k_: _conv(x, k_, strides, padding), kernel)[1](g)[0]


def split_piece(batch: int, out_positions: int, target: int | None = None) -> int:
    """Examples per piece: ``target // out_positions`` (at least 1, at most ``batch``).

    ``out_positions`` is the output's height x width; ``target`` defaults to ``SPLIT_POSITIONS``
    (read at trace time). With 2,048: ``32 x 32`` outputs -> 2 examples a piece, ``16 x 16`` -> 8,
    ``8 x 8`` -> 32, ``4 x 4`` -> 128.
    """
    target = SPLIT_POSITIONS if target is None else target
    return max(1, min(batch, target // max(1, out_positions)))


def _with_kernel_grad(kernel_grad: Callable) -> Callable:
    """``conv(x, kernel, strides, padding)``: XLA's forward and input gradient, ``kernel_grad``'s kernel VJP."""

    @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
    def conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, ...], padding: Padding) -> jax.Array:
        return _conv(x, kernel, strides, padding)

    def conv_fwd(x, kernel, strides, padding):
        return _conv(x, kernel, strides, padding), (x, kernel)

    def conv_bwd(strides, padding, residuals, g):
        x, kernel = residuals
        return _input_grad(x, kernel, strides, padding, g), kernel_grad(x, kernel, strides, padding, g)

    conv.defvjp(conv_fwd, conv_bwd)
    return conv


def _split_kernel_grad(x, kernel, strides, padding, g):
    """XLA's kernel gradient summed over batch pieces of :func:`split_piece` examples."""
    n = x.shape[0]
    piece = split_piece(n, g.shape[1] * g.shape[2])
    # Unrolled on purpose (see the module docstring); independent pieces, summed at the end.
    parts = [
        _kernel_grad(x[start : start + piece], kernel, strides, padding, g[start : start + piece])
        for start in range(0, n, piece)
    ]
    return parts[0] if len(parts) == 1 else jnp.sum(jnp.stack(parts), axis=0)


def _patches(x: jax.Array, kernel_hw: tuple[int, int], strides: Sequence[int], padding) -> jax.Array:
    """im2col of ``x [N, H, W, C]``: ``[N, Ho, Wo, kh*kw*C]``, taps ordered (kh, kw, C) like HWIO."""
    kh, kw = kernel_hw
    xp = jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
    ho = (xp.shape[1] - kh) // strides[0] + 1
    wo = (xp.shape[2] - kw) // strides[1] + 1
    taps = [
        jax.lax.slice(
            xp,
            (0, i, j, 0),
            (xp.shape[0], i + (ho - 1) * strides[0] + 1, j + (wo - 1) * strides[1] + 1, xp.shape[3]),
            (1, strides[0], strides[1], 1),
        )
        for i in range(kh)
        for j in range(kw)
    ]
    return taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)


def _matmul_kernel_grad(x, kernel, strides, padding, g):
    """The kernel gradient as one matmul of the im2col patches with the output cotangent."""
    cols = _patches(x, kernel.shape[:2], strides, padding)
    dk = jnp.einsum("nhwp,nhwo->po", cols, g.astype(cols.dtype))
    return dk.reshape(kernel.shape).astype(kernel.dtype)


_conv_split_grad = _with_kernel_grad(_split_kernel_grad)
_conv_matmul_grad = _with_kernel_grad(_matmul_kernel_grad)


# ---------------------------------------------------------------------------------------------
# Drop-ins for ``lax.conv_general_dilated`` as ``nn.Conv`` calls it.
# ---------------------------------------------------------------------------------------------


def _supported(
    lhs, padding, *, lhs_dilation=None, rhs_dilation=None, feature_group_count=1, precision=None, **unused
) -> bool:
    del unused  # nn.Conv always passes NHWC/HWIO dimension numbers for 4-D inputs
    dilated = any(d != 1 for d in (lhs_dilation or ())) or any(d != 1 for d in (rhs_dilation or ()))
    return not (
        dilated or feature_group_count != 1 or precision is not None or isinstance(padding, str) or lhs.ndim != 4
    )


def _drop_in(impl: Callable, name: str) -> Callable:
    def conv_general_dilated(lhs, rhs, window_strides, padding, **kwargs):
        if not _supported(lhs, padding, **kwargs):
            raise ValueError(
                f"conv_grad={name!r} supports only undilated, ungrouped 2-D NHWC convolutions with "
                "explicit padding; use config.model.conv_grad='xla' for this model"
            )
        pads = tuple(tuple(int(p) for p in pair) for pair in padding)
        return impl(lhs, rhs, tuple(int(s) for s in window_strides), pads)

    conv_general_dilated.__name__ = f"conv_{name}_grad"
    conv_general_dilated.__doc__ = f"``lax.conv_general_dilated`` with the ``{name!r}`` kernel gradient."
    return conv_general_dilated


conv_split_grad = _drop_in(_conv_split_grad, "split")
conv_matmul_grad = _drop_in(_conv_matmul_grad, "matmul")


def conv_auto_grad(lhs, rhs, window_strides, padding, **kwargs):
    """``conv_split_grad`` on CPU with YNNPACK convolutions, else plain ``lax.conv_general_dilated``."""
    if jax.default_backend() == "cpu" and not runtime.eigen_convolutions() and _supported(lhs, padding, **kwargs):
        return conv_split_grad(lhs, rhs, window_strides, padding, **kwargs)
    return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, **kwargs)


def conv_impl(conv_grad: ConvGrad) -> Callable | None:
    """The ``conv_general_dilated`` argument of ``nn.Conv`` for ``conv_grad`` (None: Flax's default)."""
    impls = {"auto": conv_auto_grad, "xla": None, "split": conv_split_grad, "matmul": conv_matmul_grad}
    if conv_grad not in impls:
        raise ValueError(f"unknown conv_grad {conv_grad!r}; choose one of {CONV_GRADS}")
    return impls[conv_grad]
