"""Analytic FLOPs of a CIFAR Spiking ResNet training step, from the model's own stage table."""

from __future__ import annotations

import importlib


def basic_block_stages(depth: int) -> tuple[int, ...]:
    """Blocks per stage of a basic-block ResNet depth, read from the model's own table."""
    # Imported here, not at module level: the SpikingJelly worker imports this package from an
    # interpreter without flax. (The module, not the function of the same name snnjax.models exports.)
    resnet_lib = importlib.import_module("snnjax.models.resnet")
    stages, block_cls = resnet_lib.STAGE_SIZES[depth]
    if block_cls is not resnet_lib.BasicBlock:
        raise ValueError(f"ResNet{depth} uses {block_cls.__name__}; the FLOP model counts basic blocks only")
    return tuple(stages)


def resnet_train_flops(
    depth: int, width: int, time_steps: int, batch: int, hw: int = 32, in_ch: int = 3, classes: int = 10
) -> dict[str, float]:
    """FLOPs (2 per multiply-add) of one training step of the CIFAR Spiking ResNet, convolutions + head.

    Forward: the 3x3 stem once per image (static input, direct encoding), every block convolution
    (and 1x1 shortcut) once per time step. Backward: kernel gradient for every convolution, input
    gradient for all but the stem (its input is the data): 2x the forward MACs of the body, 1x of
    the stem. BN, LIF and the optimizer update are elementwise and not counted (<1%).
    """

    def conv(h_out, cin, cout, k):
        return h_out * h_out * cin * cout * k * k

    stem = conv(hw, in_ch, width, 3)
    body, cin, h = 0, width, hw
    for s, n in enumerate(basic_block_stages(depth)):
        cout = width * 2**s
        for b in range(n):
            stride = 2 if s > 0 and b == 0 else 1
            h_out = h // stride
            body += conv(h_out, cin, cout, 3) + conv(h_out, cout, cout, 3)
            if stride != 1 or cin != cout:
                body += conv(h_out, cin, cout, 1)
            cin, h = cout, h_out
    head = cin * classes
    fwd_macs = batch * (stem + time_steps * body + head)
    train_macs = batch * (2 * stem + 3 * time_steps * body + 3 * head)
    return dict(forward_flops=2.0 * fwd_macs, train_flops=2.0 * train_macs)
