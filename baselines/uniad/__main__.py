"""``python -m baselines.uniad train|predict|run|presets`` (see :mod:`baselines.common.cli`)."""

import sys

import baselines.uniad  # noqa: F401  (registers the method and its presets)
from baselines.common.cli import main

if __name__ == "__main__":
    sys.exit(main("uniad", prog="python -m baselines.uniad", default_preset="uniad"))
