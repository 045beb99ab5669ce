"""Baseline tests run torch on one thread.

Fast and steady on a small or shared machine (an OpenMP team larger than the
idle CPUs spins at every barrier); the tests compare runs within one process,
so one fixed count is all that bit-identity needs.
"""

import pytest

from baselines.common.runtime import configure_threads


@pytest.fixture(autouse=True)
def _torch_threads():
    configure_threads(threads=1)
