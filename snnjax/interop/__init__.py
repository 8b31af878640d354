"""Interoperability with other frameworks' checkpoints.

:mod:`snnjax.interop.torch`: PyTorch ResNet ``state_dict`` files (torchvision, SpikingJelly, the official
IDSNN code, pycls) to snnjax variables and back; :mod:`snnjax.interop.source` uses them as the IDSNN
teacher / transplant source of a run; ``python -m snnjax.interop.export`` writes a trained run's network
as a PyTorch ``state_dict``. Nothing here imports torch until a ``.pth`` file is read or written
(``pip install 'snnjax[torch]'``).
"""

from snnjax.interop.layouts import FORMATS, LAYOUTS, Arch

__all__ = ["FORMATS", "LAYOUTS", "Arch"]
