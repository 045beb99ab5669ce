"""RD++: revisiting reverse distillation for anomaly detection (Tien et al., CVPR 2023).

RD (:mod:`baselines.rd.model`) with a trainable projection of each teacher
level between the teacher and the one-class bottleneck, built as ADer
(``model/rdpp.py``) builds it:

- :class:`ProjectionLayer` per level of c channels: four 3×3 convs (with
  bias) c → c/2 → c/4 → c/2 → c, each followed by InstanceNorm (no affine
  parameters, no running statistics) and LeakyReLU (slope 0.01); PyTorch's
  default initialisation.
- Student path: teacher features → projections → bottleneck → decoder; the
  map compares the teacher's (unprojected) features with the decoder's.
- Training also encodes a noisy copy of each image
  (:mod:`baselines.rdpp.noise`) and adds ``0.2 · L_proj``
  (:mod:`baselines.rdpp.losses`) to RD's loss.
- Optimisation (ADer's ``RDPTrainer``): the projections at the preset's
  learning rate, bottleneck and decoder at ``distill_lr_scale`` (5) times
  it, both Adam with the same betas (one Adam with two parameter groups is
  the same optimiser).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from baselines.common.encoder import FrozenEncoder
from baselines.common.model import normalisation, register_method
from baselines.common.presets import Preset
from baselines.rd.model import ReverseDistillation, check_levels, flat_cosine_loss
from baselines.rdpp.losses import projection_loss
from baselines.rdpp.noise import NoisePatches

#: weight of L_proj in the training loss (ADer ``RDPTrainer``)
PROJ_WEIGHT = 0.2


class ProjectionLayer(nn.Module):
    """c → c/2 → c/4 → c/2 → c channels, each 3×3 conv + InstanceNorm + LeakyReLU(0.01)."""

    def __init__(self, channels: int):
        super().__init__()
        widths = [channels, channels // 2, channels // 4, channels // 2, channels]
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.01)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class RDPlusPlus(ReverseDistillation):
    """RD++: RD with projected teacher features and the projection loss; see the module docstring."""

    trains_on_images = True  # every step encodes a fresh noisy copy of its images

    def __init__(self, encoder: FrozenEncoder, noise: NoisePatches, distill_lr_scale: float = 5.0,
                 ssot: bool = True, **rd_kwargs):
        super().__init__(encoder, **rd_kwargs)
        self.projection = nn.ModuleList(ProjectionLayer(c) for c in encoder.channels)
        self.noise = noise
        self.distill_lr_scale = float(distill_lr_scale)
        self.ssot = bool(ssot)

    def student_inputs(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [p(f) for p, f in zip(self.projection, feats)]

    def forward(self, x: torch.Tensor | None = None, feats: list[torch.Tensor] | None = None,
                x_noise: torch.Tensor | None = None, perm: torch.Tensor | None = None):
        """(features, reconstructions), and L_proj third when the noisy images ``x_noise`` are given."""
        if feats is None:
            feats = self.encoder(x)
        proj = self.student_inputs(feats)
        recs = self.decoder(self.bottleneck(proj))
        if x_noise is None:
            return feats, recs
        noise_feats = self.encoder(x_noise)
        proj_noise = self.student_inputs(noise_feats)
        return feats, recs, projection_loss(noise_feats, proj_noise, proj, perm, self.ssot)

    def loss(self, feats: Sequence[torch.Tensor], recs: Sequence[torch.Tensor],
             proj_loss: torch.Tensor | None = None) -> torch.Tensor:
        cos = flat_cosine_loss(feats, recs)
        return cos if proj_loss is None else cos + PROJ_WEIGHT * proj_loss

    def training_inputs(self, x: torch.Tensor | None, idx: list[int], epoch: int) -> dict:
        """The batch's noisy copy and the batch permutation of SSOT, both fixed by (seed, epoch, idx)."""
        rng = np.random.default_rng([self.noise.seed, 1, int(epoch), *map(int, idx)])  # stream 1: permutations
        perm = torch.from_numpy(rng.permutation(len(idx)))
        return {"x_noise": self.noise.apply(x, idx, epoch), "perm": perm.to(x.device)}

    def optimizer_groups(self) -> list[tuple[list[nn.Parameter], float]]:
        distill = [p for m in (self.bottleneck, self.decoder) for p in m.parameters()]
        return [(list(self.projection.parameters()), 1.0), (distill, self.distill_lr_scale)]


def build_rdpp(preset: Preset, encoder: FrozenEncoder) -> RDPlusPlus:
    check_levels(encoder, preset.image_size)
    kwargs = dict(preset.model)
    noise = NoisePatches(preset.image_size, normalisation(preset)[1], seed=preset.seed, **kwargs.pop("noise", {}))
    return RDPlusPlus(encoder, noise, **kwargs)


register_method("rdpp", build_rdpp)
