"""The doctests of ``evaluator.metrics`` run in CI: each example in a docstring is a test."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import evaluator.metrics

MODULES = sorted(m.name for m in pkgutil.iter_modules(evaluator.metrics.__path__, "evaluator.metrics."))


def test_every_metrics_module_is_covered():
    assert {"evaluator.metrics.ranking", "evaluator.metrics.aupro", "evaluator.metrics.binned",
            "evaluator.metrics.thresholds", "evaluator.metrics.regions", "evaluator.metrics.pooling"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} doctest(s) of {name} failed"
