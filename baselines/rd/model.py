"""RD: anomaly detection via reverse distillation from one-class embedding (Deng & Li, CVPR 2022).

Built as ADer (zhangzjn/ADer, ``model/rd.py``) builds it for its benchmark
configs; shapes below are the published ones (wide_resnet50_2 layers 1–3 on
256×256 input), but every width derives from the encoder's ``feature_info``.

1. Teacher φ (frozen encoder): levels C = (c0, c1, c2) = (256, 512, 1024)
   channels at (64², 32², 16²): reductions r, 2r, 4r.
2. :class:`OneClassBottleneck` (ADer's ``MFF_OCE``, "multi-scale feature
   fusion + one-class embedding"): level 0 through two 3×3 stride-2
   conv + BN + ReLU (c0 → c1 → c2), level 1 through one (c1 → c2), level 2
   as it is; concatenated (3·c2 = 3072 channels at 16²) and passed through
   ``fusion_blocks`` = 3 ResNet bottlenecks (3×3 conv carrying the stride),
   the first with stride 2 and a 1×1 stride-2 conv + BN shortcut, to
   2·c2 = 2048 channels at 8². Bottleneck inner width: ``out / 4 ·
   fusion_width / 64`` (ADer: 64, so 512 — not widened like the encoder).
3. :class:`ReverseDecoder` (ADer's ``de_wide_resnet50_2``): three stages,
   deepest level first, of ``decoder_blocks`` = (3, 4, 6) "de-bottlenecks"
   (1×1 → 2×2 stride-2 transposed conv or 3×3 conv → 1×1, BN, ReLU) whose
   first block doubles the resolution and has a 2×2 stride-2 transposed
   conv + BN shortcut; stage outputs (c2, c1, c0) = (1024, 512, 256)
   channels at (16², 32², 64²) are the student's features. Inner width
   ``out / 4 · decoder_width / 64`` (ADer: 128, wide_resnet50_2's).
   The fourth stage count of ADer's ``[3, 4, 6, 3]`` builds nothing.

Initialisation as ADer: every ``nn.Conv2d`` of the bottleneck and decoder
Kaiming-normal (fan-out, ReLU gain), BatchNorm weight 1 / bias 0; the
transposed convs keep PyTorch's default.

Loss (ADer ``CosLoss``, ``avg=False``, ``flat=True``): Σ over levels of the
batch mean of ``1 − cos`` between the flattened (C·H·W) teacher and student
features of each image. Map: mean over levels of the per-position
``1 − cos`` maps, each resized bilinearly (``align_corners=True``) to the
image size, Gaussian σ = 4 (ADer ``cal_anomaly_map(uni_am=False,
amap_mode="add", gaussian_sigma=4)``; ADer divides the sum by 9 = levels ×
Σweights instead of 3, a constant factor no metric sees). Image score: the
map's maximum (the configs' ``pooling_ks=None``).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from baselines.common.encoder import FrozenEncoder
from baselines.common.maps import mean_cosine_anomaly_map
from baselines.common.model import ReconstructionModel, register_method
from baselines.common.presets import Preset

#: channel expansion of a (de-)bottleneck: output = 4 × "planes"
EXPANSION = 4


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout)]


def _deconv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False), nn.BatchNorm2d(cout)]


class Bottleneck(nn.Module):
    """ResNet bottleneck ``cin → width → width → cout`` (the 3×3 conv strides), shortcut, ReLU.

    ``up=True`` makes it the decoder's "de-bottleneck": the middle conv is a
    2×2 stride-2 transposed conv (×2 resolution) instead of a 3×3 conv.
    """

    def __init__(self, cin: int, cout: int, width: int, stride: int = 1, up: bool = False,
                 shortcut: nn.Module | None = None):
        super().__init__()
        middle = _deconv_bn(width, width) if up else _conv_bn(width, width, 3, stride)
        self.body = nn.Sequential(
            *_conv_bn(cin, width, 1), nn.ReLU(inplace=True),
            *middle, nn.ReLU(inplace=True),
            *_conv_bn(width, cout, 1),
        )
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.body(x) + identity)


def _stage(cin: int, cout: int, blocks: int, width_per_group: int, up: bool) -> nn.Sequential:
    """``blocks`` bottlenecks to ``cout`` channels, the first halving (or, ``up``, doubling) the resolution."""
    width = cout // EXPANSION * width_per_group // 64
    shortcut = nn.Sequential(*(_deconv_bn(cin, cout) if up else _conv_bn(cin, cout, 1, stride=2)))
    layers = [Bottleneck(cin, cout, width, stride=2, up=up, shortcut=shortcut)]
    layers += [Bottleneck(cout, cout, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _init_like_ader(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class OneClassBottleneck(nn.Module):
    """Teacher levels (c0, c1, c2) → one embedding of 2·c2 channels at half the deepest level's size."""

    def __init__(self, channels: Sequence[int], blocks: int = 3, width_per_group: int = 64):
        super().__init__()
        c0, c1, c2 = channels
        self.down0 = nn.Sequential(*_conv_bn(c0, c1, 3, 2), nn.ReLU(inplace=True),
                                   *_conv_bn(c1, c2, 3, 2), nn.ReLU(inplace=True))
        self.down1 = nn.Sequential(*_conv_bn(c1, c2, 3, 2), nn.ReLU(inplace=True))
        self.fuse = _stage(3 * c2, 2 * c2, blocks, width_per_group, up=False)
        _init_like_ader(self)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.fuse(torch.cat([self.down0(feats[0]), self.down1(feats[1]), feats[2]], 1))


class ReverseDecoder(nn.Module):
    """Embedding (2·c2) → student features (c0, c1, c2), shallowest first like the teacher's."""

    def __init__(self, channels: Sequence[int], blocks: Sequence[int] = (3, 4, 6), width_per_group: int = 128):
        super().__init__()
        widths = [2 * channels[-1], *reversed(channels)]  # deepest first
        self.stages = nn.ModuleList(
            _stage(cin, cout, n, width_per_group, up=True) for cin, cout, n in zip(widths, widths[1:], blocks)
        )
        _init_like_ader(self)

    def forward(self, z: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for stage in self.stages:
            z = stage(z)
            outs.append(z)
        return outs[::-1]


def check_levels(encoder: FrozenEncoder, image_size: int | None = None) -> None:
    """Three levels one ×2 apart, channels divisible by 4, an even-sized deepest level (if ``image_size``)."""
    ch, red = encoder.channels, encoder.reductions
    if len(ch) != 3 or red[1] != 2 * red[0] or red[2] != 2 * red[1]:
        raise ValueError(f"RD needs three encoder levels one ×2 apart, got reductions {red}")
    if any(c % EXPANSION for c in ch):
        raise ValueError(f"RD needs encoder channels divisible by {EXPANSION}, got {ch}")
    if image_size is not None and image_size % (2 * red[-1]):
        raise ValueError(f"image size {image_size} is not a multiple of {2 * red[-1]} (twice the deepest "
                         "reduction): the decoder would not restore the teacher's sizes")


def flat_cosine_loss(feats: Sequence[torch.Tensor], recs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Σ over levels of the batch mean of ``1 − cos(teacher, student)``, each image's level flattened."""
    return sum((1 - F.cosine_similarity(f.flatten(1), r.flatten(1), dim=1)).mean() for f, r in zip(feats, recs))


class ReverseDistillation(ReconstructionModel):
    """RD: frozen teacher → one-class bottleneck → reverse (student) decoder; see the module docstring."""

    def __init__(self, encoder: FrozenEncoder, decoder_blocks: Sequence[int] = (3, 4, 6), decoder_width: int = 128,
                 fusion_blocks: int = 3, fusion_width: int = 64, sigma: float = 4.0):
        super().__init__(encoder, sigma=sigma)
        check_levels(encoder)
        self.bottleneck = OneClassBottleneck(encoder.channels, fusion_blocks, fusion_width)
        self.decoder = ReverseDecoder(encoder.channels, decoder_blocks, decoder_width)

    def student_inputs(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """What the bottleneck sees of the teacher's features (RD: the features themselves)."""
        return feats

    def reconstruct(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.decoder(self.bottleneck(self.student_inputs(feats)))

    def loss(self, feats: Sequence[torch.Tensor], recs: Sequence[torch.Tensor]) -> torch.Tensor:
        return flat_cosine_loss(feats, recs)

    @torch.no_grad()
    def anomaly_map(self, feats, recs, out_size: tuple[int, int]) -> torch.Tensor:
        return mean_cosine_anomaly_map(feats, recs, out_size, self.sigma, align_corners=True)


def build_rd(preset: Preset, encoder: FrozenEncoder) -> ReverseDistillation:
    check_levels(encoder, preset.image_size)
    return ReverseDistillation(encoder, **preset.model)


register_method("rd", build_rd)
