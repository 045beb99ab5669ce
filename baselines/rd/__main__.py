"""``python -m baselines.rd train|predict|run|presets`` (see :mod:`baselines.common.cli`)."""

import sys

import baselines.rd  # noqa: F401  (registers the method and its presets)
from baselines.common.cli import main

if __name__ == "__main__":
    sys.exit(main("rd", prog="python -m baselines.rd", default_preset="rd"))
