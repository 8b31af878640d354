"""IDSNN (Fan et al., Biomimetics 2023): ANN teacher -> weight transplant -> SNN with knowledge distillation.

- :mod:`~snnjax.methods.idsnn.transplant`: block-mapped, loop-interpolated weight transplant (a pure pytree function).
- :mod:`~snnjax.methods.idsnn.ablation`: the four-arm ablation over seeds (``python -m snnjax.methods.idsnn.ablation``).
- :mod:`~snnjax.methods.idsnn.config`: the ``teacher`` / ``transplant`` sections, ``ARMS``, ``validate``.
- :mod:`~snnjax.methods.idsnn.pipeline`: ``run(config, workdir)``.
"""

from snnjax.methods.idsnn.config import ARMS, teacher_config, validate
from snnjax.methods.idsnn.transplant import TransplantReport, block_map, loop_interpolate

__all__ = ["ARMS", "TransplantReport", "block_map", "loop_interpolate", "teacher_config", "validate"]
