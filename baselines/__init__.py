"""Baselines of the COCO-AD suite: reconstruction methods that write submissions.

- :mod:`baselines.common` is the shared framework (dataset over a benchmark
  folder, frozen timm encoder, training engine, prediction into a submission,
  named presets, the command line).
- :mod:`baselines.invad` is InvAD / InvAD-lite (Zhang et al. 2024):
  ``python -m baselines.invad run --benchmark DIR --preset invad-tiny …``.
"""

__version__ = "0.1.0"
