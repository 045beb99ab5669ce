"""Anomaly maps of feature-reconstruction methods (InvAD, RD, UniAD, ViTAD).

Pure tensor functions; no I/O.

``cosine_anomaly_map``: each level's encoder and reconstructed features are
L2-normalised along channels, brought to the size of the largest level
(bilinear), concatenated along channels; the map is ``1 - cos`` between the
two concatenated vectors at each position, then upsampled bilinearly to the
image size and smoothed with a Gaussian (σ = 4 pixels by default, as the
published evaluation does with ``scipy.ndimage.gaussian_filter``; like scipy,
the filter sums in float64 and the map keeps its dtype).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ``int(truncate * sigma + 0.5)`` (scipy's rule)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / float(sigma)) ** 2)
    return (k / k.sum()).to(dtype)


def _symmetric_index(n: int, radius: int, device) -> torch.Tensor:
    # scipy's "reflect" mode (d c b a | a b c d | d c b a), for any radius
    i = torch.arange(-radius, n + radius, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def gaussian_blur(maps: torch.Tensor, sigma: float = 4.0, truncate: float = 4.0) -> torch.Tensor:
    """Separable Gaussian filter of (B, H, W) maps, boundary as scipy's ``mode="reflect"``.

    Equal (to float rounding) to ``scipy.ndimage.gaussian_filter(m, sigma)``
    applied to each map.
    """
    if sigma <= 0:
        return maps
    k = gaussian_kernel1d(sigma, truncate, maps.dtype).to(maps.device)
    r = (k.numel() - 1) // 2
    b, h, w = maps.shape
    x = maps.index_select(2, _symmetric_index(w, r, maps.device))
    x = F.conv2d(x.reshape(b, 1, h, w + 2 * r), k.view(1, 1, 1, -1))
    x = x.reshape(b, h, w).index_select(1, _symmetric_index(h, r, maps.device))
    x = F.conv2d(x.reshape(b, 1, h + 2 * r, w), k.view(1, 1, -1, 1))
    return x.reshape(b, h, w)


def cosine_anomaly_map(
    feats: Sequence[torch.Tensor],
    recs: Sequence[torch.Tensor],
    out_size: tuple[int, int],
    sigma: float = 4.0,
    align_corners: bool = False,
) -> torch.Tensor:
    """(B, H, W) map in [0, 2] of dissimilarity of the concatenated levels; see the module docstring."""
    size = max((f.shape[-2:] for f in feats), key=lambda s: s[0] * s[1])
    a, b = [], []
    for f, r in zip(feats, recs):
        f = F.normalize(f.float(), dim=1)
        r = F.normalize(r.float(), dim=1)
        if f.shape[-2:] != size:
            f = F.interpolate(f, size=size, mode="bilinear", align_corners=align_corners)
            r = F.interpolate(r, size=size, mode="bilinear", align_corners=align_corners)
        a.append(f)
        b.append(r)
    d = 1.0 - F.cosine_similarity(torch.cat(a, 1), torch.cat(b, 1), dim=1)  # (B, h, w)
    d = F.interpolate(d[:, None], size=tuple(out_size), mode="bilinear", align_corners=align_corners)[:, 0]
    return gaussian_blur(d.double(), sigma).to(d.dtype)


def mean_cosine_anomaly_map(
    feats: Sequence[torch.Tensor],
    recs: Sequence[torch.Tensor],
    out_size: tuple[int, int],
    sigma: float = 4.0,
    align_corners: bool = True,
) -> torch.Tensor:
    """(B, H, W) mean over levels of the per-level ``1 - cos`` maps at ``out_size``; see the module docstring."""
    total = None
    for f, r in zip(feats, recs):
        d = 1.0 - F.cosine_similarity(f.float(), r.float(), dim=1)  # (B, h, w)
        d = F.interpolate(d[:, None], size=tuple(out_size), mode="bilinear", align_corners=align_corners)[:, 0]
        total = d if total is None else total + d
    total = total / len(feats)
    return gaussian_blur(total.double(), sigma).to(total.dtype)


def pooled_max(maps: torch.Tensor, k: int) -> torch.Tensor:
    """(B,) float64 image scores: the maximum of each (B, H, W) map's k×k average pooling.

    Stride 1, no padding (ADer's evaluator with ``pooling_ks=[k, k]``), in
    float64 as ADer pools its float64 maps.
    """
    h, w = maps.shape[-2:]
    if not 1 <= k <= min(h, w):
        raise ValueError(f"pooling window {k} does not fit maps of {h}x{w}")
    pooled = F.avg_pool2d(maps.double()[:, None], k, stride=1)
    return pooled.flatten(1).amax(1)


def feature_mse(feats: Sequence[torch.Tensor], recs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over levels of the mean squared error between features and reconstructions."""
    return sum(F.mse_loss(r, f) for f, r in zip(feats, recs))

