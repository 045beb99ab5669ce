"""ViTAD (Zhang et al. 2023) as a baseline: ``python -m baselines.vitad``.

Importing this package registers the method (:mod:`baselines.vitad.model`)
and its presets ``vitad`` and ``vitad-tiny`` (:mod:`baselines.vitad.presets`).
"""

from baselines.vitad import model, presets  # noqa: F401  (registration)
from baselines.vitad.model import ViTAD

__all__ = ["ViTAD"]
