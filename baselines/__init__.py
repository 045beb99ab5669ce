"""Baselines of the COCO-AD suite: reconstruction methods that write submissions.

- :mod:`baselines.common` is the shared framework (dataset over a benchmark
  folder, frozen timm encoder, training engine, prediction into a submission,
  named presets, the command line).
- :mod:`baselines.invad` is InvAD / InvAD-lite (Zhang et al. 2024):
  ``python -m baselines.invad run --benchmark DIR --preset invad-tiny …``.
"""

import os as _os

# Idle OpenMP threads sleep instead of spinning. Effective only when this runs
# before torch is imported (``python -m baselines.…``, torchrun). It changes no
# result, only speed: on a machine that other jobs keep busy, spinning teams of
# two threads on two cores were measured ten times slower than sleeping ones.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
