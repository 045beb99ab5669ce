"""RD, reverse distillation (Deng & Li, CVPR 2022), as a baseline: ``python -m baselines.rd``.

Importing this package registers the method (:mod:`baselines.rd.model`) and
its presets ``rd`` and ``rd-tiny`` (:mod:`baselines.rd.presets`).
:mod:`baselines.rdpp` (RD++) builds on it.
"""

from baselines.rd import model, presets  # noqa: F401  (registration)
from baselines.rd.model import ReverseDistillation

__all__ = ["ReverseDistillation"]
