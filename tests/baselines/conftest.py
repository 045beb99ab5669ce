"""Baseline tests run torch with the CPU threads that are idle (see runtime.configure_threads)."""

import pytest

from baselines.common.runtime import configure_threads


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    configure_threads()
