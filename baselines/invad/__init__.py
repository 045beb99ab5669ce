"""InvAD and InvAD-lite (Zhang et al. 2024) as a baseline: ``python -m baselines.invad``.

Importing this package registers the method (:mod:`baselines.invad.model`)
and its presets ``invad``, ``invad-lite`` and ``invad-tiny``
(:mod:`baselines.invad.presets`).
"""

from baselines.invad import model, presets  # noqa: F401  (registration)
from baselines.invad.model import InvAD

__all__ = ["InvAD"]
