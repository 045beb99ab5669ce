"""Baselines of the COCO-AD suite: reconstruction methods that write submissions.

- :mod:`baselines.common` is the shared framework (dataset over a benchmark
  folder, frozen timm encoder, training engine, prediction into a submission,
  named presets, the command line).
- :mod:`baselines.invad` is InvAD / InvAD-lite (Zhang et al. 2024):
  ``python -m baselines.invad run --benchmark DIR --preset invad-tiny …``.
- :mod:`baselines.vitad` is ViTAD (Zhang et al. 2023):
  ``python -m baselines.vitad run --benchmark DIR --preset vitad-tiny …``.
- :mod:`baselines.rd` is RD (Deng & Li 2022), :mod:`baselines.rdpp` RD++
  (Tien et al. 2023): ``python -m baselines.rd …``, ``python -m baselines.rdpp …``.
- :mod:`baselines.uniad` is UniAD (You et al. 2022):
  ``python -m baselines.uniad run --benchmark DIR --preset uniad-tiny …``.
"""

import os as _os

# Idle OpenMP threads spin briefly, then sleep (libgomp's default spins 30x
# longer). Effective only when this runs before torch is imported (``python -m
# baselines.…``, torchrun); it changes no result, only speed. Measured with
# invad-tiny on two cores: as fast as spinning on a quiet machine (~37 img/s),
# as robust as sleeping (OMP_WAIT_POLICY=PASSIVE, ~27 img/s there) when other
# jobs share the cores.
_os.environ.setdefault("GOMP_SPINCOUNT", "10000")

__version__ = "0.2.0"
