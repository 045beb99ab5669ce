"""``python -m baselines.vitad train|predict|run|presets`` (see :mod:`baselines.common.cli`)."""

import sys

import baselines.vitad  # noqa: F401  (registers the method and its presets)
from baselines.common.cli import main

if __name__ == "__main__":
    sys.exit(main("vitad", prog="python -m baselines.vitad", default_preset="vitad"))
