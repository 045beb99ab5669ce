"""UniAD (You et al., NeurIPS 2022) as a baseline: ``python -m baselines.uniad``.

Importing this package registers the method (:mod:`baselines.uniad.model`)
and its presets ``uniad`` and ``uniad-tiny`` (:mod:`baselines.uniad.presets`).
"""

from baselines.uniad import model, presets  # noqa: F401  (registration)
from baselines.uniad.model import UniAD

__all__ = ["UniAD"]
