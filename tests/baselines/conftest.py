"""Baseline tests run torch on one thread.

Fast and steady on a small or shared machine (an OpenMP team larger than the
idle CPUs spins at every barrier); the tests compare runs within one process,
so one fixed count is all that bit-identity needs.
"""

import pytest

from baselines.common.runtime import configure_threads


@pytest.fixture(scope="module", autouse=True)
def _torch_threads_for_module_fixtures():
    # Autouse fixtures run first within their scope: this one precedes the
    # module-scoped fixtures that train (a reference run made on another thread
    # count than the test's own runs would differ in the last bits).
    configure_threads(threads=1)


@pytest.fixture(autouse=True)
def _torch_threads():
    # again per test: an in-process CLI run may have set its own count
    configure_threads(threads=1)


def assert_frozen_encoder(model, x):
    """One training step's forward and backward on ``x``; the encoder must get no gradient and keep its state.

    Every trainable parameter must get one, the model stays in training mode and its encoder in eval mode
    (BatchNorm statistics untouched). Returns ``(feats, recs)``.
    """
    import torch

    model.train()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    feats, recs = model(x)
    model.zero_grad(set_to_none=True)
    model.loss(feats, recs).backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.trainable_parameters())
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())
    assert model.training and not model.encoder.training
    return feats, recs


def losses_on_a_fixed_batch(model, preset, x, steps: int) -> list[float]:
    """Training losses of ``steps`` optimiser steps (the preset's optimiser) on the features of ``x``."""
    from baselines.common.engine import make_optimizer

    model.train()
    feats = model.encode(x)
    opt, _ = make_optimizer(preset, model)
    losses = []
    for _ in range(steps):
        _, recs = model(feats=feats)
        loss = model.loss(feats, recs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def same_state(a: dict, b: dict) -> bool:
    """The two state dicts hold the same keys and bit-identical tensors."""
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def same_optimizer(a: dict, b: dict) -> bool:
    """The two optimiser state dicts are bit-identical: per-parameter states and parameter groups."""
    sa, sb = a["state"], b["state"]
    return sa.keys() == sb.keys() and all(same_state(sa[k], sb[k]) for k in sa) and a["param_groups"] == b["param_groups"]
