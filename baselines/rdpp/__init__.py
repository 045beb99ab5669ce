"""RD++ (Tien et al., CVPR 2023) as a baseline: ``python -m baselines.rdpp``.

Importing this package registers the method (:mod:`baselines.rdpp.model`, built
on :mod:`baselines.rd`) and its presets ``rdpp`` and ``rdpp-tiny``
(:mod:`baselines.rdpp.presets`).
"""

from baselines.rdpp import model, presets  # noqa: F401  (registration)
from baselines.rdpp.model import RDPlusPlus

__all__ = ["RDPlusPlus"]
