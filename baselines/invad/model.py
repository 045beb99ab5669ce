"""InvAD: feature inversion with space-aware style modulation (Zhang et al. 2024).

The network of the official code (ADer, zhangzjn/ADer: ``model/invad.py``,
``Fuser`` and ``Decoder`` as ``configs/invad/invad_coco.py`` and
``configs/invad/invad_lite/lite_coco.py`` build them), written anew. Shapes
below are for ``invad`` (wide_resnet50_2 layers 1–3 on 256² input); every
width and size derives from the encoder's ``feature_info``.

1. Encoder φ (frozen): levels C = (256, 512, 1024) at (64², 32², 16²).
2. Fuser (style extractor): per level a conv with kernel = stride =
   16²-reduction ratio (4, 2, 1), bias, keeping C_i channels, and batch norm
   (no activation); the levels concatenated, 1×1 conv + BN + ReLU to
   ``style_ch`` = 64 channels, one torchvision ``Bottleneck`` (64 → 16 → 64);
   then one style stage per level, deepest first, each an upsampling ×2
   ``ConvLayer`` (none for the first stage) and ``conv_num`` plain ones:
   style maps of min(C_i, 64) channels at 16², 32², 64².
3. Decoder: a learned constant (1024 × 16²) and a 3×3 1024 → 1024
   ``ConvLayer``; per level, deepest first, a two-layer latent conv
   (style → style → ``latent_ch`` = 16 channels, shared by that stage's
   blocks) and ``blocks`` styled residual blocks of width C_i; a stage's
   output is the reconstruction of that level.
4. Styled residual block: ``(conv2(conv1(x)) + skip(x)) / √2``. A styled
   conv: LayerNorm over (C, H, W) without affine, per-pixel ``x·γ + β`` with
   γ, β 3×3 equalised convs of the latent (γ's bias starts at 1), a 3×3
   equalised conv without bias, fused leaky ReLU. The first block of every
   stage but the first upsamples: its first conv is a transposed conv
   (stride 2) + [1, 3, 3, 1] blur and is *not* modulated; its skip is a
   transposed 1×1 conv + blur.

StyleGAN2 layers: an equalised-learning-rate conv stores its weight drawn
N(0, 1/lr_mul²) and multiplies it by ``lr_mul / √fan_in`` at run time (its
bias by ``lr_mul``), so Adam's steps on the stored weight move the effective
weight by ``lr · lr_mul / √fan_in``; the fused leaky ReLU adds a per-channel
bias, then ``leaky_relu(·, 0.2) · √2``.

Loss: ``loss_weight`` × Σ_levels MSE; map: 1 − cosine of the concatenated,
L2-normalised levels, bilinear with ``align_corners=True`` (ADer's
``uni_am=True``), Gaussian σ = 4.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck

from baselines.common.encoder import FrozenEncoder
from baselines.common.maps import cosine_anomaly_map
from baselines.common.model import ReconstructionModel, register_method
from baselines.common.presets import Preset

_SLOPE = 0.2
_GAIN = math.sqrt(2.0)
_BLUR = (1.0, 3.0, 3.0, 1.0)
#: ADer builds its batch norms (``get_norm('bn_2d')``) with eps 1e-6; the Bottleneck keeps torch's 1e-5
_BN_EPS = 1e-6


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``leaky_relu(x + bias, 0.2) · √2``, the bias per channel (dimension 1)."""
    return F.leaky_relu(x + bias.view(1, -1, *([1] * (x.dim() - 2))), _SLOPE) * _GAIN


class FusedLeakyReLU(nn.Module):
    """StyleGAN2's activation with its own per-channel bias (starts at 0)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class EqualConv2d(nn.Module):
    """Equalised-learning-rate conv (see module docstring); ``transposed``: stride-2 transposed conv, no padding."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: int = 0, bias: bool = False,
                 bias_init: float = 0.0, lr_mul: float = 1.0, transposed: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(cin * kernel * kernel)
        self.lr_mul = float(lr_mul)
        self.padding = int(padding)
        self.transposed = bool(transposed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.scale
        b = None if self.bias is None else self.bias * self.lr_mul
        if self.transposed:
            # ADer runs it as a grouped conv over the batch, one group per sample with the same
            # weight: that is this plain transposed conv
            return F.conv_transpose2d(x, w.transpose(0, 1), b, stride=2, padding=self.padding)
        return F.conv2d(x, w, b, padding=self.padding)


class Blur(nn.Module):
    """Zero padding ``pad`` = (before, after) on both axes, then the normalised [1, 3, 3, 1]² FIR × ``gain``."""

    def __init__(self, pad: tuple[int, int], gain: float = 1.0):
        super().__init__()
        k = torch.tensor(_BLUR)
        k = torch.outer(k, k)
        self.register_buffer("kernel", k / k.sum() * gain, persistent=False)
        self.pad = (int(pad[0]), int(pad[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        x = F.pad(x, (self.pad[0], self.pad[1], self.pad[0], self.pad[1]))
        k = self.kernel.to(x.dtype)  # symmetric: convolution and correlation agree
        return F.conv2d(x, k.expand(c, 1, *k.shape), groups=c)


def _upsample_blur(kernel: int) -> Blur:
    """The blur after a stride-2 transposed conv of size ``kernel``: output exactly 2× the input."""
    p = (len(_BLUR) - 2) - (kernel - 1)
    return Blur(((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)


class ConvLayer(nn.Sequential):
    """StyleGAN2's ``ConvLayer`` as InvAD uses it: equalised conv (no bias), then a fused leaky ReLU.

    ``upsample``: transposed conv + blur (×2). ``activate=False``: the conv alone.
    ``lr_mul`` applies to the transposed conv only: the official ``ConvLayer``
    passes it on in its upsampling branch and drops it in the plain one, so
    the published models train their plain ``ConvLayer`` convs at multiplier 1.
    """

    def __init__(self, cin: int, cout: int, kernel: int, upsample: bool = False, activate: bool = True,
                 lr_mul: float = 1.0):
        if upsample:
            layers = [EqualConv2d(cin, cout, kernel, lr_mul=lr_mul, transposed=True), _upsample_blur(kernel)]
        else:
            layers = [EqualConv2d(cin, cout, kernel, padding=kernel // 2)]
        if activate:
            layers.append(FusedLeakyReLU(cout))
        super().__init__(*layers)


class StyledConv(nn.Module):
    """LayerNorm → (``modulate``) ``x·γ(s) + β(s)`` → equalised 3×3 conv (``upsample``: transposed + blur) → fused lReLU.

    The official weight is repeated per sample and run as a grouped conv; the
    modulation acts on the input, so every sample has the same weight and a
    plain conv is the same operation.
    """

    def __init__(self, cin: int, cout: int, style_ch: int, upsample: bool = False, modulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.scale = 1.0 / math.sqrt(cin * 9)
        self.upsample = bool(upsample)
        self.blur = _upsample_blur(3) if upsample else None
        self.gamma = EqualConv2d(style_ch, cin, 3, padding=1, bias=True, bias_init=1.0) if modulate else None
        self.beta = EqualConv2d(style_ch, cin, 3, padding=1, bias=True, bias_init=0.0) if modulate else None
        self.act = FusedLeakyReLU(cout)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        x = F.layer_norm(x, x.shape[1:])
        if self.gamma is not None:
            x = x * self.gamma(style) + self.beta(style)
        w = self.weight * self.scale
        if self.upsample:
            x = self.blur(F.conv_transpose2d(x, w.transpose(0, 1), stride=2))
        else:
            x = F.conv2d(x, w, padding=1)
        return self.act(x)


class StyledResBlock(nn.Module):
    """``(conv2(conv1(x, s), s) + skip(x)) / √2``; ``upsample``: conv1 and skip ×2, conv1 unmodulated."""

    def __init__(self, cin: int, cout: int, style_ch: int, upsample: bool = False):
        super().__init__()
        self.conv1 = StyledConv(cin, cout, style_ch, upsample=upsample, modulate=not upsample)
        self.conv2 = StyledConv(cout, cout, style_ch)
        self.skip = ConvLayer(cin, cout, 1, upsample=upsample, activate=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x, style), style)
        return (out + self.skip(x)) * (1.0 / _GAIN)


def _conv_bn(cin: int, cout: int, kernel: int, bias: bool, relu: bool) -> nn.Sequential:
    # ADer's ConvNormAct with stride = kernel (padding ceil((k - s) / 2) = 0)
    layers = [nn.Conv2d(cin, cout, kernel, stride=kernel, bias=bias), nn.BatchNorm2d(cout, eps=_BN_EPS)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Fuser(nn.Module):
    """Encoder levels → style maps, deepest level's size first (×2 per stage); see module docstring, point 2."""

    def __init__(self, channels: list[int], reductions: list[int], style_chs: list[int], lr_mul: float = 0.01,
                 conv_num: int = 1, bottle_num: int = 1):
        super().__init__()
        deepest = reductions[-1]
        self.down = nn.ModuleList(_conv_bn(c, c, deepest // r, bias=True, relu=False)
                                  for c, r in zip(channels, reductions))
        self.cat = _conv_bn(sum(channels), style_chs[-1], 1, bias=False, relu=True)
        self.bottle = nn.Sequential(*(Bottleneck(style_chs[-1], style_chs[-1] // Bottleneck.expansion)
                                      for _ in range(bottle_num)))
        self.stages = nn.ModuleList()
        cur = style_chs[-1]
        for i in range(len(channels)):
            prev, cur = cur, style_chs[len(channels) - 1 - i]
            layers = [ConvLayer(prev, cur, 3, upsample=i > 0, lr_mul=lr_mul)]
            layers += [ConvLayer(cur, cur, 3, lr_mul=lr_mul) for _ in range(conv_num)]
            self.stages.append(nn.Sequential(*layers))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        x = self.bottle(self.cat(torch.cat([d(f) for d, f in zip(self.down, feats)], 1)))
        styles = []
        for stage in self.stages:
            x = stage(x)
            styles.append(x)
        return styles


class Decoder(nn.Module):
    """Learned constant → styled stages, deepest level first; see module docstring, point 3."""

    def __init__(self, channels: list[int], style_chs: list[int], base_size: tuple[int, int], latent_ch: int = 16,
                 blocks: int = 2, lr_mul: float = 0.01):
        super().__init__()
        depth = len(channels)
        self.const = nn.Parameter(torch.randn(1, channels[-1], *base_size))
        self.conv1 = ConvLayer(channels[-1], channels[-1], 3, lr_mul=lr_mul)
        self.latents = nn.ModuleList()
        self.stages = nn.ModuleList()
        prev = channels[-1]
        for i in range(depth):
            level = depth - 1 - i
            s, c = style_chs[level], channels[level]
            self.latents.append(nn.Sequential(ConvLayer(s, s, 3, lr_mul=lr_mul), ConvLayer(s, latent_ch, 3, lr_mul=lr_mul)))
            self.stages.append(nn.ModuleList(
                StyledResBlock(prev if b == 0 else c, c, latent_ch, upsample=(i > 0 and b == 0)) for b in range(blocks)
            ))
            prev = c

    def forward(self, styles: list[torch.Tensor]) -> list[torch.Tensor]:
        """Style maps deepest-first → reconstructions deepest-first."""
        x = self.conv1(self.const.expand(styles[0].shape[0], -1, -1, -1))
        outs = []
        for latent, stage, style in zip(self.latents, self.stages, styles):
            code = latent(style)
            for block in stage:
                x = block(x, code)
            outs.append(x)
        return outs


class InvAD(ReconstructionModel):
    """InvAD / InvAD-lite: encoder → fuser (styles) → style-modulated decoder.

    ``style_ch``: the style maps have min(C_i, style_ch) channels (ADer
    ``out_cha``); ``latent_ch``: channels of the per-stage latent (ADer
    ``latent_channel_size`` with ``small_generator=True``); ``blocks``: styled
    residual blocks per stage (ADer ``layers``); ``lr_mul``: equalised-LR
    multiplier of the upsampling ``ConvLayer``s; ``conv_num`` / ``bottle_num``:
    plain ``ConvLayer``s per fuser stage / bottlenecks after the fusion.
    """

    #: 2: the official architecture (baselines 0.2.0); 1 was written from the paper alone
    version = 2

    def __init__(self, encoder: FrozenEncoder, image_size: int, style_ch: int = 64, latent_ch: int = 16,
                 blocks: int = 2, lr_mul: float = 0.01, conv_num: int = 1, bottle_num: int = 1,
                 loss_weight: float = 1.0, sigma: float = 4.0):
        super().__init__(encoder, loss_weight=loss_weight, sigma=sigma)
        ch, red = encoder.channels, encoder.reductions
        if any(red[i + 1] != 2 * red[i] for i in range(len(red) - 1)):
            raise ValueError(f"InvAD needs encoder levels one ×2 apart, got reductions {red}")
        if image_size % red[-1]:
            raise ValueError(f"image size {image_size} is not a multiple of the deepest reduction {red[-1]}")
        style_chs = [min(c, style_ch) for c in ch]
        self.fuser = Fuser(ch, red, style_chs, lr_mul, conv_num, bottle_num)
        self.decoder = Decoder(ch, style_chs, (image_size // red[-1],) * 2, latent_ch, blocks, lr_mul)

    def reconstruct(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(reversed(self.decoder(self.fuser(feats))))  # shallowest first, as the encoder's levels

    @torch.no_grad()
    def anomaly_map(self, feats, recs, out_size: tuple[int, int]) -> torch.Tensor:
        # ADer's cal_anomaly_map(uni_am=True, use_cos=True): its resizes align corners
        return cosine_anomaly_map(feats, recs, out_size, self.sigma, align_corners=True)


def build_invad(preset: Preset, encoder: FrozenEncoder) -> InvAD:
    return InvAD(encoder, preset.image_size, **preset.model)


register_method("invad", build_invad)
