"""Checks every method's model must pass (frozen encoder, learning), shared by the per-method tests."""

from __future__ import annotations

import torch

from baselines.common.engine import make_optimizer
from baselines.common.model import ReconstructionModel
from baselines.common.presets import Preset


def assert_frozen_encoder(model: ReconstructionModel, x: torch.Tensor) -> None:
    """One training step's backward on ``x``: no gradient and no statistics change in the encoder.

    Every trainable parameter gets a gradient, the model trains while its
    encoder stays in eval mode, and the trainable count is every parameter
    outside the encoder.
    """
    model.train()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    feats, recs = model(x)
    model.zero_grad(set_to_none=True)
    model.loss(feats, recs).backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.trainable_parameters())
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())
    assert model.training and not model.encoder.training
    counts = model.param_counts()
    assert counts["trainable"] == sum(p.numel() for n, p in model.named_parameters() if not n.startswith("encoder."))


def losses_on_a_fixed_batch(model: ReconstructionModel, preset: Preset, x: torch.Tensor, steps: int) -> list[float]:
    """Training losses of ``steps`` steps on the features of ``x``, with the preset's optimiser."""
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
