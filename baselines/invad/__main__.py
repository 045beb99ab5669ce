"""``python -m baselines.invad train|predict|run|presets`` (see :mod:`baselines.common.cli`)."""

import sys

import baselines.invad  # noqa: F401  (registers the method and its presets)
from baselines.common.cli import main

if __name__ == "__main__":
    sys.exit(main("invad", prog="python -m baselines.invad", default_preset="invad"))
