"""UniAD: a unified reconstruction transformer for multi-class AD (You et al., NeurIPS 2022).

Built to equal the official implementation the published COCO-AD numbers come
from (ADer, ``model/uniad.py`` with ``configs/uniad/uniad_coco.py`` and
``configs/benchmark/uniad/uniad_256_100e.py``); shapes below are for that
configuration (timm ``tf_efficientnet_b4``, 256×256 input), but every width
and size derives from the encoder's ``feature_info`` and the preset.

1. Encoder φ (frozen): EfficientNet-B4 stem and blocks 0–4, levels of
   24/32/56/160 channels at strides 2/4/8/16 (timm ``out_indices`` 0–3).
2. Alignment (:class:`FeatureAlign`, ADer's ``MFCN``): every level resized to
   the deepest level's size, 16×16, by bilinear interpolation with
   ``align_corners=True`` (ADer's ``UpsamplingBilinear2d`` with scale factors
   2/16 … 16/16: downsampling, too, is plain bilinear sampling), concatenated
   to 272 channels. These aligned features are what the model reconstructs
   (and what the feature cache keeps).
3. Reconstruction (:class:`UniADReconstruction`): the 16×16 = 256 positions as
   tokens; in training, feature jitter (below); a linear projection 272 → 256;
   learned position embeddings (a row and a column table of 128 channels
   each, uniform on [0, 1) at init); a post-norm transformer encoder of 4
   layers and the layer-wise query decoder of 4 layers (8 heads, feed-forward
   1024, ReLU, dropout 0.1); the decoder's final LayerNorm; a linear
   projection back to 272 channels.
4. Layer-wise query decoder (:class:`QueryDecoderLayer`): every layer starts
   from its own learned query table (one query per position), attends with it
   to the encoder's output, then to the previous decoder layer's output (the
   first layer: the encoder's output again), then a feed-forward block; each
   step a residual and a LayerNorm.
5. Neighbour-masked attention: every attention (encoder self-attention and
   both decoder attentions) forbids a position to attend to the positions
   within ``neighbor_size // 2`` rows and columns of itself (with ADer's
   ``neighbor_size`` = 8 on 16×16: a 9×9 window), so a token cannot simply
   copy its own or its neighbours' features.
6. Feature jitter (training only): with probability ``jitter_prob`` (1.0) per
   batch, every token x of C channels gets Gaussian noise of standard
   deviation ``jitter_scale · ‖x‖ / C`` (20 · ‖x‖ / 272) per channel.

Initialisation as ADer's: one encoder (decoder) layer is built and deep-copied
N times, then every ``nn.Linear`` (the feed-forward layers, the projections and
the attentions' output projections) gets a new Xavier-uniform weight and a
zero bias. The attentions' packed input projections (``in_proj_weight``, Xavier
uniform from PyTorch) and the decoder's query tables (N(0, 1)) are not re-drawn:
they start equal in every layer, as in the official model.

Loss: MSE between the reconstructed and the aligned features. Map: the L2
distance over channels between them at each of the 16×16 positions, upsampled
bilinearly with ``align_corners=True`` to the image size, no smoothing (ADer's
``pred``). Image score: the maximum of the map's 16×16 average pooling (stride
1, no padding), ADer's ``pooling_ks = [16, 16]`` (the preset's ``pool``;
prediction writes it to ``scores.csv``).

Randomness (jitter, dropout) is drawn from generators seeded by
(``seed``, training step, process rank) at every training forward and
nowhere else, so that a run is the same with or without the feature cache
and resumed runs continue exactly (the step count is a buffer in the
checkpoint). The official code draws from the global generators instead; the
distribution is the same.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.common.encoder import FrozenEncoder
from baselines.common.model import ReconstructionModel, register_method
from baselines.common.presets import Preset


def drop_unused_blocks(encoder: FrozenEncoder) -> int:
    """Remove the blocks after the last requested level from a timm EfficientNet feature model.

    timm's ``EfficientNetFeatures`` builds and runs all blocks of the
    network, whatever ``out_indices`` asks for; the blocks after the last
    requested level feed no output. For UniAD's EfficientNet-B4 those are
    blocks 5 and 6, 13,106,232 frozen parameters that the official model
    carries and runs but whose output it discards: without them the model
    computes the same features (tests compare both) and its checkpoints are
    52 MB smaller. Returns the number of parameters removed (0 for other
    encoders, which are left alone).
    """
    body = encoder.body
    if getattr(body, "feature_hooks", 1) is not None or not isinstance(getattr(body, "blocks", None), nn.Sequential):
        return 0
    used = [re.fullmatch(r"blocks\.(\d+)", name) for name in body.feature_info.module_name()]
    if not used or not all(used):
        return 0
    keep = max(int(m.group(1)) for m in used) + 1
    removed = sum(p.numel() for b in body.blocks[keep:] for p in b.parameters())
    body.blocks = body.blocks[:keep]
    return removed


class FeatureAlign(nn.Module):
    """Encoder levels → one map at the deepest level's size: bilinear (align_corners=True), concatenated."""

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[-1].shape[-2:]
        out = [f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="bilinear", align_corners=True)
               for f in feats]
        return torch.cat(out, dim=1)


def neighbor_mask(size: tuple[int, int], neighbor: tuple[int, int]) -> torch.Tensor:
    """(H·W, H·W) additive attention mask: −inf where the key lies in the query's neighbourhood, else 0.

    Position (i, j) may not attend to (i', j') with |i − i'| ≤ neighbor[0] // 2
    and |j − j'| ≤ neighbor[1] // 2 (ADer's ``generate_mask``). Tokens are
    ordered row by row.
    """
    h, w = size
    rows = torch.arange(h).repeat_interleave(w)
    cols = torch.arange(w).repeat(h)
    near = ((rows[:, None] - rows[None, :]).abs() <= neighbor[0] // 2) & (
        (cols[:, None] - cols[None, :]).abs() <= neighbor[1] // 2)
    return torch.zeros(h * w, h * w).masked_fill(near, float("-inf"))


class LearnedPositionEmbedding(nn.Module):
    """(H·W, 2·D) position codes: column table then row table, D channels each, uniform [0, 1) at init."""

    def __init__(self, size: tuple[int, int], dim: int):
        super().__init__()
        self.size = tuple(size)
        self.row = nn.Embedding(size[0], dim)
        self.col = nn.Embedding(size[1], dim)
        nn.init.uniform_(self.row.weight)
        nn.init.uniform_(self.col.weight)

    def forward(self) -> torch.Tensor:
        h, w = self.size
        col = self.col.weight[None, :, :].expand(h, w, -1)
        row = self.row.weight[:, None, :].expand(h, w, -1)
        return torch.cat([col, row], dim=-1).reshape(h * w, -1)


def _attend(attn: nn.MultiheadAttention, q, k, v, mask) -> torch.Tensor:
    return attn(q, k, v, attn_mask=mask, need_weights=False)[0]


class FeedForward(nn.Module):
    """The layers' last step: ``norm(x + dropout(W₂ dropout(relu(W₁ x))))``."""

    def __init__(self, dim: int, ff: int, dropout: float):
        super().__init__()
        self.linear1 = nn.Linear(dim, ff)
        self.linear2 = nn.Linear(ff, dim)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.drop_out = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.drop_out(self.linear2(self.drop(F.relu(self.linear1(x))))))


class EncoderLayer(nn.Module):
    """Post-norm transformer encoder layer; queries and keys carry the position code, values do not."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.ff = FeedForward(dim, ff, dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        qk = x + pos
        return self.ff(self.norm(x + self.drop(_attend(self.attn, qk, qk, x, mask))))


class QueryDecoderLayer(nn.Module):
    """Layer-wise query decoder layer (post-norm): own queries → encoder output → previous output → FFN."""

    def __init__(self, dim: int, tokens: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.queries = nn.Embedding(tokens, dim)
        self.attn_memory = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.attn_previous = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_memory = nn.LayerNorm(dim)
        self.norm_previous = nn.LayerNorm(dim)
        self.drop_memory = nn.Dropout(dropout)
        self.drop_previous = nn.Dropout(dropout)
        self.ff = FeedForward(dim, ff, dropout)

    def forward(self, previous: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        q = self.queries.weight[None].expand(memory.shape[0], -1, -1)
        q = self.norm_memory(q + self.drop_memory(_attend(self.attn_memory, q + pos, memory + pos, memory, mask)))
        q = self.norm_previous(q + self.drop_previous(
            _attend(self.attn_previous, q + pos, previous + pos, previous, mask)))
        return self.ff(q)


class UniADReconstruction(nn.Module):
    """Aligned features (B, C, H, W) → reconstruction of the same shape; see the module docstring, 3–6."""

    def __init__(self, channels: int, size: tuple[int, int], hidden_dim: int = 256, heads: int = 8,
                 encoder_layers: int = 4, decoder_layers: int = 4, ff_dim: int = 1024, dropout: float = 0.1,
                 neighbor_size: tuple[int, int] | None = None, jitter_scale: float = 20.0,
                 jitter_prob: float = 1.0):
        super().__init__()
        h, w = size = (int(size[0]), int(size[1]))
        neighbor = tuple(neighbor_size) if neighbor_size is not None else (h // 2, w // 2)
        if min(2 * (neighbor[0] // 2) + 1, h) * min(2 * (neighbor[1] // 2) + 1, w) >= h * w:
            raise ValueError(f"neighbour mask {neighbor} on {h}x{w} tokens leaves the centre token nothing to attend to")
        if hidden_dim % 2:
            raise ValueError(f"hidden_dim must be even (half row, half column code), got {hidden_dim}")
        self.size = size
        self.neighbor_size = neighbor
        self.jitter_scale = float(jitter_scale)
        self.jitter_prob = float(jitter_prob)
        self.pos = LearnedPositionEmbedding(size, hidden_dim // 2)
        self.encoder_layers = _clones(EncoderLayer(hidden_dim, heads, ff_dim, dropout), encoder_layers)
        self.decoder_layers = _clones(QueryDecoderLayer(hidden_dim, h * w, heads, ff_dim, dropout), decoder_layers)
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.input_proj = nn.Linear(channels, hidden_dim)
        self.output_proj = nn.Linear(hidden_dim, channels)
        self.register_buffer("mask", neighbor_mask(size, neighbor), persistent=False)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def jitter(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (B, L, C) plus N(0, (scale · ‖token‖ / C)²) noise per channel, with probability ``prob``."""
        if self.jitter_scale <= 0 or float(torch.rand(())) > self.jitter_prob:
            return tokens
        std = tokens.norm(dim=2, keepdim=True) / tokens.shape[2] * self.jitter_scale
        return tokens + torch.randn(tokens.shape, device=tokens.device, dtype=tokens.dtype) * std

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        b, c, h, w = feats.shape
        if (h, w) != self.size:
            raise ValueError(f"features of {h}x{w} positions, the model was built for {self.size[0]}x{self.size[1]}")
        tokens = feats.flatten(2).transpose(1, 2)  # (B, H·W, C), row by row
        if self.training:
            tokens = self.jitter(tokens)
        x = self.input_proj(tokens)
        pos = self.pos()[None]
        mask = self.mask.to(x.dtype)
        for layer in self.encoder_layers:
            x = layer(x, pos, mask)
        memory = out = x
        for layer in self.decoder_layers:
            out = layer(out, memory, pos, mask)
        out = self.output_proj(self.decoder_norm(out))
        return out.transpose(1, 2).reshape(b, c, h, w)


def _clones(layer: nn.Module, n: int) -> nn.ModuleList:
    # deep copies, as the official code makes them: parameters not re-initialised afterwards start equal
    return nn.ModuleList(copy.deepcopy(layer) for _ in range(n))


class UniAD(ReconstructionModel):
    """UniAD: frozen encoder → aligned features → neighbour-masked reconstruction transformer."""

    def __init__(self, encoder: FrozenEncoder, image_size: int, seed: int = 0, loss_weight: float = 1.0,
                 **transformer):
        super().__init__(encoder, loss_weight=loss_weight, sigma=0.0)
        deepest = encoder.reductions[-1]
        if image_size % deepest:
            raise ValueError(f"image size {image_size} is not a multiple of the deepest reduction {deepest}")
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.removed_backbone_params = drop_unused_blocks(encoder)
        self.align = FeatureAlign()
        side = image_size // deepest
        self.transformer = UniADReconstruction(sum(encoder.channels), (side, side), **transformer)
        # training forwards so far: seeds each one's jitter and dropout (saved with the checkpoint)
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.int64))

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            return [self.align(self.encoder(x))]

    def reconstruct(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        if not self.training:
            return [self.transformer(feats[0])]
        device = feats[0].device
        seed = int(np.random.SeedSequence([self.seed, int(self.train_steps), _rank()]).generate_state(1, np.uint64)[0])
        self.train_steps += 1
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type=device.type):
            torch.default_generator.manual_seed(seed)
            if device.type == "cuda":  # only this device's generator, the one fork_rng restores
                torch.cuda.default_generators[device.index if device.index is not None
                                              else torch.cuda.current_device()].manual_seed(seed)
            return [self.transformer(feats[0])]

    @torch.no_grad()
    def anomaly_map(self, feats, recs, out_size: tuple[int, int]) -> torch.Tensor:
        """(B, H, W) float32: ‖reconstruction − feature‖₂ over channels, bilinear (align_corners=True) to ``out_size``."""
        d = (recs[0].float() - feats[0].float()).pow(2).sum(1, keepdim=True).sqrt()
        return F.interpolate(d, size=tuple(out_size), mode="bilinear", align_corners=True)[:, 0]


def _rank() -> int:
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def build_uniad(preset: Preset, encoder: FrozenEncoder) -> UniAD:
    return UniAD(encoder, preset.image_size, seed=preset.seed, **preset.model)


register_method("uniad", build_uniad)
