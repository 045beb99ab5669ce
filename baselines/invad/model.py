"""InvAD: feature inversion with space-aware style modulation (Zhang et al. 2024).

Written from the paper's description; shapes below are for the published
configuration (wide_resnet50_2 layers 1–3 on 256×256 input), but every width
and size derives from the encoder's ``feature_info``.

1. Encoder φ (frozen): levels C = (256, 512, 1024) channels at (64², 32², 16²).
2. Aggregation (:class:`StyleExtractor`): each level brought to the deepest
   level's size S = 16² by 3×3 stride-2 conv + BN + ReLU steps (a single 3×3
   stride-1 conv for the deepest level) to ``min(C_i, proj_cap)`` channels,
   concatenated, 1×1 conv + BN + ReLU to ``latent_ch`` = 64, one bottleneck
   block; then one style stage per level producing ``latent_ch``-channel
   style maps at S, 2S, 4S (3×3 conv + BN + leaky ReLU, ×2 bilinear
   upsampling before every stage but the first).
3. Decoder (:class:`StyleDecoder`): a learned constant of C_deepest × S
   (1024 × 16 × 16); per level, deepest first, ``blocks`` styled residual
   blocks of width C_i (1024, 512, 256), the first block of every later stage
   upsampling ×2. A stage's output is the reconstruction of that level.
4. Styled residual block: two modulated convs and a 1×1 skip,
   ``(out + skip) / √2``. A modulated conv: LayerNorm over (C, H, W) without
   affine, then per-pixel ``x·γ + β`` with γ, β from 3×3 convs of a
   ``mod_ch`` = 16-channel latent (3×3 conv + leaky ReLU of the style map; γ's
   bias starts at 1), then a 3×3 conv and leaky ReLU (slope 0.2).

Loss: ``loss_weight`` × Σ_levels MSE; map: 1 − cosine (see
:mod:`baselines.common.maps`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines.common.encoder import FrozenEncoder
from baselines.common.model import ReconstructionModel, register_method
from baselines.common.presets import Preset

_SLOPE = 0.2


def _conv_bn_act(cin: int, cout: int, k: int, stride: int = 1, act: str = "relu") -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True) if act == "relu" else nn.LeakyReLU(_SLOPE, inplace=True),
    )


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class Bottleneck(nn.Module):
    """ResNet bottleneck (1×1 → 3×3 → 1×1, BN) with identity shortcut, width kept."""

    def __init__(self, ch: int, mid: int | None = None):
        super().__init__()
        mid = mid or ch
        self.body = nn.Sequential(
            _conv_bn_act(ch, mid, 1),
            _conv_bn_act(mid, mid, 3),
            nn.Conv2d(mid, ch, 1, bias=False),
            nn.BatchNorm2d(ch),
        )

    def forward(self, x):
        return F.relu(x + self.body(x))


class StyleExtractor(nn.Module):
    """Encoder levels → one style map per level (shallowest last), see module doc."""

    def __init__(self, channels: list[int], reductions: list[int], latent_ch: int = 64, proj_cap: int = 256):
        super().__init__()
        deepest = reductions[-1]
        self.proj = nn.ModuleList()
        widths = []
        for c, r in zip(channels, reductions):
            steps = int(round(math.log2(deepest / r)))
            if 2**steps * r != deepest:
                raise ValueError(f"feature reductions {reductions} are not powers of two apart")
            w = min(c, proj_cap)
            layers = [_conv_bn_act(c, w, 3)] if steps == 0 else []
            cin = c
            for _ in range(steps):
                layers.append(_conv_bn_act(cin, w, 3, stride=2))
                cin = w
            self.proj.append(nn.Sequential(*layers))
            widths.append(w)
        self.fuse = nn.Sequential(_conv_bn_act(sum(widths), latent_ch, 1), Bottleneck(latent_ch))
        self.stages = nn.ModuleList(_conv_bn_act(latent_ch, latent_ch, 3, act="leaky") for _ in channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        z = self.fuse(torch.cat([p(f) for p, f in zip(self.proj, feats)], 1))
        styles = []
        for j, stage in enumerate(self.stages):
            z = stage(z if j == 0 else _up2(z))
            styles.append(z)
        return styles  # deepest level's size first, ×2 per stage


class ModulatedConv(nn.Module):
    """Space-aware style modulation then conv: see module docstring, point 4."""

    def __init__(self, cin: int, cout: int, style_ch: int, mod_ch: int = 16, upsample: bool = False):
        super().__init__()
        self.upsample = upsample
        self.mod = nn.Sequential(nn.Conv2d(style_ch, mod_ch, 3, padding=1), nn.LeakyReLU(_SLOPE, inplace=True))
        self.gamma = nn.Conv2d(mod_ch, cin, 3, padding=1)
        self.beta = nn.Conv2d(mod_ch, cin, 3, padding=1)
        nn.init.ones_(self.gamma.bias)
        nn.init.zeros_(self.beta.bias)
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = _up2(x)
        h = F.layer_norm(x, x.shape[1:])
        m = self.mod(style)
        h = h * self.gamma(m) + self.beta(m)
        return F.leaky_relu(self.conv(h), _SLOPE)


class StyledBlock(nn.Module):
    """Two modulated convs with a 1×1 skip; output ``(out + skip) / √2``."""

    def __init__(self, cin: int, cout: int, style_ch: int, mod_ch: int = 16, upsample: bool = False):
        super().__init__()
        self.upsample = upsample
        self.conv1 = ModulatedConv(cin, cout, style_ch, mod_ch, upsample)
        self.conv2 = ModulatedConv(cout, cout, style_ch, mod_ch)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x, style), style)
        skip = self.skip(_up2(x) if self.upsample else x)
        return (out + skip) * (1.0 / math.sqrt(2.0))


class StyleDecoder(nn.Module):
    """Learned constant → styled stages, deepest level first; see module docstring."""

    def __init__(self, channels: list[int], base_size: tuple[int, int], style_ch: int,
                 blocks: int = 2, mod_ch: int = 16):
        super().__init__()
        widths = list(reversed(channels))
        self.const = nn.Parameter(torch.randn(1, widths[0], *base_size))
        self.stages = nn.ModuleList()
        cin = widths[0]
        for j, w in enumerate(widths):
            stage = nn.ModuleList(
                StyledBlock(cin if b == 0 else w, w, style_ch, mod_ch, upsample=(j > 0 and b == 0))
                for b in range(blocks)
            )
            self.stages.append(stage)
            cin = w

    def forward(self, styles: list[torch.Tensor]) -> list[torch.Tensor]:
        """Styles deepest-first → reconstructions deepest-first."""
        x = self.const.expand(styles[0].shape[0], -1, -1, -1)
        outs = []
        for stage, style in zip(self.stages, styles):
            for block in stage:
                x = block(x, style)
            outs.append(x)
        return outs


class InvAD(ReconstructionModel):
    """InvAD / InvAD-lite: encoder → styles → style-modulated decoder."""

    def __init__(self, encoder: FrozenEncoder, image_size: int, latent_ch: int = 64, proj_cap: int = 256,
                 blocks: int = 2, mod_ch: int = 16, loss_weight: float = 1.0, sigma: float = 4.0):
        super().__init__(encoder, loss_weight=loss_weight, sigma=sigma)
        ch, red = encoder.channels, encoder.reductions
        if any(red[i + 1] != 2 * red[i] for i in range(len(red) - 1)):
            raise ValueError(f"InvAD needs encoder levels one ×2 apart, got reductions {red}")
        if image_size % red[-1]:
            raise ValueError(f"image size {image_size} is not a multiple of the deepest reduction {red[-1]}")
        base = (image_size // red[-1],) * 2
        self.styles = StyleExtractor(ch, red, latent_ch, proj_cap)
        self.decoder = StyleDecoder(ch, base, latent_ch, blocks, mod_ch)

    def reconstruct(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        recs = self.decoder(self.styles(feats))
        return list(reversed(recs))  # shallowest first, as the encoder's levels


def build_invad(preset: Preset, encoder: FrozenEncoder) -> InvAD:
    return InvAD(encoder, preset.image_size, **preset.model)


register_method("invad", build_invad)
