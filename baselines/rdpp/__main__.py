"""``python -m baselines.rdpp train|predict|run|presets`` (see :mod:`baselines.common.cli`)."""

import sys

import baselines.rdpp  # noqa: F401  (registers the method and its presets)
from baselines.common.cli import main

if __name__ == "__main__":
    sys.exit(main("rdpp", prog="python -m baselines.rdpp", default_preset="rdpp"))
