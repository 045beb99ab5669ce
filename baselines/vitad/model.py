"""ViTAD: plain-ViT feature reconstruction (Zhang et al. 2023), as ADer implements it.

Published configuration (ADer ``model/vitad.py``, ``configs/vitad/vitad_coco.py``;
256×256 input, every level 384 channels on the 16×16 token grid):

1. Teacher φ (frozen): timm's ViT-S/16 with DINO weights
   (``vit_small_patch16_224.dino``, built with ``img_size=256`` so that timm
   resamples its 14×14 position embedding to 16×16 once, bicubic, at
   loading). Its patch tokens after blocks 3, 6 and 9 are the levels to
   reconstruct; the tokens after block 12 (before the final norm, which ADer
   never applies) are the *neck*. Encoder ``out_indices`` (2, 5, 8, 11):
   every level but the last ``neck`` ones is a teacher level.
2. Fusion: the neck levels concatenated along channels (one level here,
   ADer ``mul=1``), one ``Linear(384·n, 384)`` per token (PyTorch's default
   initialisation, as ADer's ``Fusion``).
3. Decoder: a learned position embedding (truncated normal, std 0.02) added
   to the fused tokens, then ``depth`` = 9 ViT blocks of width 384 (6 heads,
   MLP ×4, qkv bias, LayerNorm ε = 1e-6, GELU; linear layers truncated
   normal std 0.02 with zero bias, timm's ViT initialisation). The tokens
   after decoder blocks 3, 6, 9 (``students``), in reverse order, reconstruct
   teacher levels 3, 6, 9: decoder block 9 the shallowest teacher level.

Loss (ADer ``CosLoss(avg=False)``): Σ_levels mean over images of
``1 − cos(teacher, reconstruction)``, each image's level flattened into one
vector. Map: mean over levels of the per-token ``1 − cos``, each resized
bilinearly (``align_corners=True``) to the input size, Gaussian σ = 4
(:func:`baselines.common.maps.mean_cosine_anomaly_map`).

Same model, fewer tensors than ADer: ADer's decoder is a whole timm
``VisionTransformer`` whose class token, patch embedding, final norm and
1000-class head are never used in its forward pass (681,448 parameters, none
ever gets a gradient), and the teacher's final LayerNorm (768) is never
applied; neither exists here (timm's ``features_only`` drops the latter).

For a CNN teacher (the unpublished ``vitad-tiny``), levels differ in width
and grid. Every level is then brought to the token grid (``grid``, default
the neck's): area-averaged when larger, bilinear when smaller; and a level
whose width differs from the decoder's gets its own ``Linear(dim, C)``
output head. The published configuration has neither (no resampling, no
head).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from baselines.common.encoder import FrozenEncoder
from baselines.common.maps import mean_cosine_anomaly_map
from baselines.common.model import ReconstructionModel, register_method
from baselines.common.presets import Preset


def _init_vit_linear(module: nn.Module) -> None:
    # timm's ViT initialisation ("init_weights_vit_timm") for the decoder's linear layers
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def to_grid(f: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, C, h, w) → (B, C, grid, grid): area average when larger, bilinear when smaller."""
    if tuple(f.shape[-2:]) == (grid, grid):
        return f
    if f.shape[-2] >= grid and f.shape[-1] >= grid:
        return F.adaptive_avg_pool2d(f, grid)
    return F.interpolate(f, size=(grid, grid), mode="bilinear", align_corners=False)


class ViTAD(ReconstructionModel):
    """Frozen ViT (or CNN) teacher → fused neck tokens → plain ViT decoder; see the module docstring."""

    def __init__(self, encoder: FrozenEncoder, image_size: int, neck: int = 1, dim: int | None = None,
                 depth: int = 9, students=(3, 6, 9), num_heads: int = 6, mlp_ratio: float = 4.0,
                 grid: int | None = None, sigma: float = 4.0):
        super().__init__(encoder, sigma=sigma)
        ch, red = list(encoder.channels), list(encoder.reductions)
        n_teacher = len(ch) - int(neck)
        if neck < 1 or n_teacher < 1:
            raise ValueError(f"ViTAD needs at least one teacher level and one neck level, got {len(ch)} "
                             f"encoder levels with neck={neck}")
        students = [int(s) for s in students]
        if len(students) != n_teacher or students != sorted(set(students)) or students[0] < 1:
            raise ValueError(f"students {students}: one increasing decoder block number per teacher level "
                             f"({n_teacher})")
        if students[-1] != depth:
            raise ValueError(f"the last student block ({students[-1]}) must be the decoder's last ({depth})")
        if any(image_size % r for r in red):
            raise ValueError(f"image size {image_size} is not a multiple of the encoder's reductions {red}")
        self.neck = int(neck)
        self.students = students
        self.grid = int(grid or image_size // red[-1])
        dim = int(dim or ch[-1])
        self.fusion = nn.Linear(sum(ch[n_teacher:]), dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        from timm.models.vision_transformer import Block

        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6))
            for _ in range(depth)
        )
        self.blocks.apply(_init_vit_linear)
        self.heads = nn.ModuleList(nn.Identity() if c == dim else nn.Linear(dim, c) for c in ch[:n_teacher])
        self.heads.apply(_init_vit_linear)

    def targets(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """The teacher levels the decoder reconstructs, on the token grid: (B, C_i, grid, grid) each."""
        return [to_grid(f, self.grid) for f in feats[:-self.neck]]

    def reconstruct(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        neck = torch.cat([to_grid(f, self.grid) for f in feats[-self.neck:]], 1)
        b = neck.shape[0]
        x = self.fusion(neck.flatten(2).transpose(1, 2)) + self.pos_embed  # (B, L, dim), L = grid², row-major
        taps = []
        for i, block in enumerate(self.blocks, start=1):
            x = block(x)
            if i in self.students:
                taps.append(x)
        taps.reverse()  # the deepest decoder block reconstructs the shallowest teacher level
        return [head(t).transpose(1, 2).reshape(b, -1, self.grid, self.grid) for head, t in zip(self.heads, taps)]

    def loss(self, feats, recs) -> torch.Tensor:
        """Σ_levels mean over images of 1 − cos of the flattened level (ADer ``CosLoss(avg=False)``)."""
        total = 0.0
        for t, r in zip(self.targets(feats), recs):
            total = total + (1.0 - F.cosine_similarity(t.flatten(1), r.flatten(1), dim=1)).mean()
        return total

    @torch.no_grad()
    def anomaly_map(self, feats, recs, out_size: tuple[int, int]) -> torch.Tensor:
        """Mean over levels of per-token 1 − cos, at ``out_size`` (align_corners=True), Gaussian σ."""
        return mean_cosine_anomaly_map(self.targets(feats), recs, out_size, self.sigma, align_corners=True)


def build_vitad(preset: Preset, encoder: FrozenEncoder) -> ViTAD:
    return ViTAD(encoder, preset.image_size, **preset.model)


register_method("vitad", build_vitad)
