"""RD++'s training-time synthetic anomalies: a patch of fractal simplex noise added to the image.

ADer's RD++ dataset (``data/ad_dataset.py``, ``RDPPAD``) makes, for every
training image and every epoch, a noisy copy: on the image in [0, 1] (size
S × S) it adds ``0.2 × noise`` inside one rectangle of ``h × w`` pixels,
``h, w`` uniform in [10, S/8) and the top-left corner uniform in
[1, S − h) × [1, S − w); nothing is clipped. ``noise[c, y, x]`` is
6-octave fractal 3-D OpenSimplex noise (persistence 0.6, first octave's
frequency 1/32 per pixel) at (x, y, c): channel c is the third coordinate.

Because the rectangle's noise is always evaluated from the origin (ADer calls
``rand_3d_octaves((3, h, w))`` with one permutation per dataset), every
patch is the top-left ``h × w`` crop of one fixed field of
``3 × (S/8 − 1) × (S/8 − 1)`` values; :class:`NoisePatches` computes it once.

The noise is OpenSimplex's kernel sum (Kurt Spencer's 2014 algorithm as in
the ``opensimplex`` package that ADer vendors): lattice points of the
stretched cubic honeycomb around a point each add ``(2 − |d|²)⁴ · (g · d)``
for displacement d within radius √2, g one of 24 fixed gradients chosen by
a seeded permutation hash; the sum is divided by 103. Here every lattice
point in range is summed; OpenSimplex's decision tree picks 6–8 of them
and skips a few whose weight is tiny. Measured against ADer's
``data/noise.py`` (same seed, same permutation tables): at 96% of 60,000
random points the two agree to 1e-12, everywhere to 1e-4 (values in ±0.95);
on a 3 × 31 × 29 six-octave field to 1.2e-4, i.e. 2.4e-5 in image units
after the factor 0.2 — under 1% of one 8-bit grey level.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

#: OpenSimplex's 3-D gradients: directions to the vertices of a rhombicuboctahedron, skewed
GRADIENTS3 = np.array([
    (-11, 4, 4), (-4, 11, 4), (-4, 4, 11), (11, 4, 4), (4, 11, 4), (4, 4, 11),
    (-11, -4, 4), (-4, -11, 4), (-4, -4, 11), (11, -4, 4), (4, -11, 4), (4, -4, 11),
    (-11, 4, -4), (-4, 11, -4), (-4, 4, -11), (11, 4, -4), (4, 11, -4), (4, 4, -11),
    (-11, -4, -4), (-4, -11, -4), (-4, -4, -11), (11, -4, -4), (4, -11, -4), (4, -4, -11),
], dtype=np.float64)
STRETCH3 = -1.0 / 6  # (1 / sqrt(3 + 1) - 1) / 3
SQUISH3 = 1.0 / 3  # (sqrt(3 + 1) - 1) / 3
NORM3 = 103.0

_LCG_MUL, _LCG_ADD = 6364136223846793005, 1442695040888963407


def _lcg(state: int) -> int:
    """One step of OpenSimplex's 64-bit linear congruential generator (signed wrap-around)."""
    return (state * _LCG_MUL + _LCG_ADD + 2**63) % 2**64 - 2**63


def permutation(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(perm, gradient index) tables of OpenSimplex for ``seed``: a permutation of 0..255 and
    ``perm[i] mod 24`` (OpenSimplex stores it ×3, as an offset into a flat table)."""
    perm = np.zeros(256, dtype=np.int64)
    source = list(range(256))
    state = _lcg(_lcg(_lcg(int(seed))))
    for i in range(255, -1, -1):
        state = _lcg(state)
        r = (state + 31) % (i + 1)
        perm[i] = source[r]
        source[r] = source[i]
    return perm, perm % len(GRADIENTS3)


def simplex3(x: np.ndarray, y: np.ndarray, z: np.ndarray, perm: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """OpenSimplex 3-D noise at the points (x, y, z) (broadcast arrays), values in about [−1, 1]."""
    x, y, z = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (x, y, z)))
    stretch = (x + y + z) * STRETCH3
    base = [np.floor(a + stretch).astype(np.int64) for a in (x, y, z)]
    value = np.zeros(x.shape)
    # every lattice point within √2 of the point lies in this 4×4×4 block of the stretched grid
    for ox in range(-1, 3):
        for oy in range(-1, 3):
            for oz in range(-1, 3):
                lx, ly, lz = base[0] + ox, base[1] + oy, base[2] + oz
                squish = (lx + ly + lz) * SQUISH3
                dx, dy, dz = x - (lx + squish), y - (ly + squish), z - (lz + squish)
                attn = 2.0 - dx * dx - dy * dy - dz * dz
                g = GRADIENTS3[grad[(perm[(perm[lx & 255] + ly) & 255] + lz) & 255]]
                contrib = attn ** 4 * (g[..., 0] * dx + g[..., 1] * dy + g[..., 2] * dz)
                value += np.where(attn > 0, contrib, 0.0)
    return value / NORM3


def fractal_noise(shape: tuple[int, int, int], seed: int, octaves: int = 6, persistence: float = 0.6,
                  frequency: float = 32.0) -> np.ndarray:
    """(depth, height, width) float64 sum over octaves k of ``persistence^k · simplex3(x/f_k, y/f_k, c/f_k)``,
    ``f_k = frequency / 2^k`` (ADer's ``rand_3d_octaves``)."""
    perm, grad = permutation(seed)
    c, y, x = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")
    out = np.zeros(shape)
    amplitude, f = 1.0, float(frequency)
    for _ in range(octaves):
        out += amplitude * simplex3(x / f, y / f, c / f, perm, grad)
        f /= 2
        amplitude *= persistence
    return out


class NoisePatches:
    """Noisy copies of normalised training images, one reproducible rectangle per (image, epoch).

    ``apply(x, idx, epoch)``: ``x`` (B, 3, S, S) normalised with ``std``;
    returns ``x`` plus ``amplitude · noise / std`` inside each image's
    rectangle — the normalised form of adding the noise to the image in
    [0, 1] (equal to float32 rounding). The rectangle of training image ``i``
    in epoch ``e`` comes from a generator seeded by (seed, 0, e, i): the same in
    a resumed run and under any number of processes.
    """

    def __init__(self, image_size: int, std: Sequence[float], seed: int, amplitude: float = 0.2,
                 min_side: int = 10, octaves: int = 6, persistence: float = 0.6, frequency: float = 32.0):
        self.size = int(image_size)
        self.seed = int(seed)
        self.amplitude = float(amplitude)
        self.max_side = self.size // 8  # exclusive, as ADer's randint(10, size // 8)
        # ADer's bounds need S ≥ 88; smaller (test-sized) images get sides of at least 1 below S/8
        self.min_side = max(1, min(int(min_side), self.max_side - 1))
        field = fractal_noise((3, self.max_side - 1, self.max_side - 1), self.seed, octaves, persistence, frequency)
        self.field = field * self.amplitude / np.asarray(std, dtype=np.float64)[:, None, None]

    def rectangle(self, index: int, epoch: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of training image ``index``'s noise in ``epoch`` (0-based)."""
        rng = np.random.default_rng([self.seed, 0, int(epoch), int(index)])  # stream 0: rectangles
        h = int(rng.integers(self.min_side, self.max_side))
        w = int(rng.integers(self.min_side, self.max_side))
        top = int(rng.integers(1, self.size - h))
        left = int(rng.integers(1, self.size - w))
        return top, left, h, w

    def apply(self, x: torch.Tensor, idx: Sequence[int], epoch: int) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"noise patches are for {self.size}×{self.size} images, got {tuple(x.shape[-2:])}")
        out = x.clone()
        for b, i in enumerate(idx):
            top, left, h, w = self.rectangle(i, epoch)
            patch = torch.from_numpy(self.field[:, :h, :w]).to(device=x.device, dtype=x.dtype)
            out[b, :, top:top + h, left:left + w] += patch
        return out
