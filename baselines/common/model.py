"""What every reconstruction baseline is to the engine, and the method registry.

A method subclasses :class:`ReconstructionModel` (frozen encoder + trainable
parts), implements :meth:`~ReconstructionModel.reconstruct`, and registers a
builder ``build(preset, encoder) -> model`` under its method name::

    register_method("invad", build_invad)

The engine never looks inside: it calls ``model(x)`` (or
``model(feats=cached)``), ``model.loss`` and ``model.anomaly_map``. Methods
that train on more than the encoder's features use the hooks
:meth:`~ReconstructionModel.training_inputs` (extra forward arguments, e.g.
RD++'s noisy images) and :meth:`~ReconstructionModel.optimizer_groups`
(per-module learning rates); a training forward may return extra outputs
after (features, reconstructions), which the engine passes on to ``loss``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from baselines.common.encoder import FrozenEncoder, backbone_normalisation, create_encoder
from baselines.common.errors import BaselineError
from baselines.common.maps import cosine_anomaly_map, feature_mse
from baselines.common.presets import Preset


class ReconstructionModel(nn.Module):
    """Frozen encoder φ and a trainable network that reconstructs φ's features.

    Loss: ``loss_weight`` × Σ_levels MSE(reconstruction, feature).
    Map: :func:`baselines.common.maps.cosine_anomaly_map` (σ = ``sigma``).

    ``version``: the architecture version of the method, stored in
    checkpoints; a method bumps it when a change makes older checkpoints'
    weights unfit, and such checkpoints are then refused with one line.
    """

    version: int = 1

    #: True when a training step needs the images themselves, not only their encoder
    #: features: the engine then reads them every epoch, also when the features are cached.
    trains_on_images: bool = False

    def __init__(self, encoder: FrozenEncoder, loss_weight: float = 1.0, sigma: float = 4.0):
        super().__init__()
        self.encoder = encoder
        self.loss_weight = float(loss_weight)
        self.sigma = float(sigma)

    def reconstruct(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The features the method reconstructs (what the feature cache keeps): the encoder's levels.

        A method whose targets are a fixed transform of the frozen levels
        (UniAD: all levels resized and concatenated) overrides this, so the
        cache holds the transformed features.
        """
        return self.encoder(x)

    def forward(self, x: torch.Tensor | None = None, feats: list[torch.Tensor] | None = None):
        """(features, reconstructions); pass ``feats`` to skip the encoder (cached features)."""
        if feats is None:
            feats = self.encode(x)
        return feats, self.reconstruct(feats)

    def loss(self, feats: Sequence[torch.Tensor], recs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.loss_weight * feature_mse(feats, recs)

    def training_inputs(self, x: torch.Tensor | None, idx: list[int], epoch: int) -> dict:
        """Keyword arguments of the training forward of one batch, besides ``x`` and ``feats``.

        ``x``: the batch's images (None when the features are cached and
        :attr:`trains_on_images` is False); ``idx``: their indices in the
        split's training set; ``epoch``: 0-based. Must depend on nothing
        else (a resumed run replays it). Default: none.
        """
        return {}

    def optimizer_groups(self) -> list[tuple[list[nn.Parameter], float]]:
        """(parameters, learning-rate multiplier) per optimiser group; default: all trainable ones at ×1."""
        return [(self.trainable_parameters(), 1.0)]

    @torch.no_grad()
    def anomaly_map(self, feats, recs, out_size: tuple[int, int]) -> torch.Tensor:
        """(B, H, W) float32 anomaly maps at ``out_size``; higher = more anomalous."""
        return cosine_anomaly_map(feats, recs, out_size, self.sigma)

    def train(self, mode: bool = True) -> "ReconstructionModel":
        super().train(mode)
        self.encoder.train(False)
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def param_counts(self) -> dict[str, int]:
        """{"total": all parameters, "trainable": those the optimiser updates}."""
        return {
            "total": sum(p.numel() for p in self.parameters()),
            "trainable": sum(p.numel() for p in self.trainable_parameters()),
        }


_METHODS: dict[str, Callable[[Preset, FrozenEncoder], ReconstructionModel]] = {}


def register_method(name: str, builder: Callable[[Preset, FrozenEncoder], ReconstructionModel]) -> None:
    _METHODS[name] = builder


def build_model(preset: Preset, weights: str | None = None) -> ReconstructionModel:
    """The model of ``preset``, its encoder loaded from ``weights`` (default: the preset's)."""
    if preset.method not in _METHODS:
        raise BaselineError(f"preset {preset.name!r}: method {preset.method!r} is not registered")
    encoder = create_encoder(preset.backbone, preset.out_indices, preset.weights if weights is None else weights,
                             model_kwargs=preset.encoder_kwargs)
    return _METHODS[preset.method](preset, encoder)


def normalisation(preset: Preset) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) for the preset's input: its own, else the backbone's."""
    mean, std = backbone_normalisation(preset.backbone)
    return tuple(preset.mean or mean), tuple(preset.std or std)
