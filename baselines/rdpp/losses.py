"""RD++'s multi-task projection loss (Tien et al., CVPR 2023, as ADer's ``Revisit_RDLoss``).

For teacher levels l with projected clean features ``P_l``, projected noisy
features ``Q_l`` and raw teacher features of the noisy image ``N_l``
(batch B, each flattened per image where a vector is needed)::

    L_proj = (SSOT + 0.01 · REC + 0.1 · CON) / 1.11
    SSOT = Σ_l S_ε(softmax(P_l), softmax(P_l[π]))      π: a random permutation of the batch
    REC  = Σ_l mean over (b, h, w) of 1 − cos_channels(Q_l, P_l)
    CON  = Σ_l mean over b of max(0, cos(N_l, P_l) − 0.5)

S_ε is the debiased Sinkhorn divergence between the batch's B vectors and
their permutation seen as two uniform point clouds (geomloss ``SamplesLoss
("sinkhorn", p=2, blur=0.05, scaling=0.95, diameter=1e7)``, as ADer calls
it), computed by :func:`sinkhorn_divergence`. The two clouds are one and the
same measure, so S_ε — value and gradient — is zero up to rounding whatever
the features are; the term is computed anyway, as in the official code.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def epsilon_schedule(p: float, diameter: float, blur: float, scaling: float) -> list[float]:
    """Temperatures of the ε-scaling loop: diameter^p, then ×scaling^p per step down to blur^p (geomloss)."""
    steps = np.arange(p * np.log(diameter), p * np.log(blur), p * np.log(scaling))
    return [diameter ** p] + [float(np.exp(e)) for e in steps] + [blur ** p]


def _half_sq_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(..., N, M) ``|x_i − y_j|² / 2``, expanded as ``(|x|² − 2 x·y + |y|²) / 2`` like geomloss."""
    xx = (x * x).sum(-1).unsqueeze(-1)
    yy = (y * y).sum(-1).unsqueeze(-2)
    return (xx - 2 * x @ y.transpose(-1, -2) + yy) / 2


def _softmin(eps: float, cost: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``−ε log Σ_j exp(h_j − C_ij / ε)`` over the last axis."""
    return -eps * torch.logsumexp(h.unsqueeze(-2) - cost / eps, dim=-1)


def _softmin_np(eps: float, cost: np.ndarray, h: np.ndarray) -> np.ndarray:
    """:func:`_softmin` in NumPy (log-sum-exp shifted by its maximum, as torch's)."""
    z = h[..., None, :] - cost / eps
    top = z.max(-1, keepdims=True)
    return -eps * (top[..., 0] + np.log(np.exp(z - top).sum(-1)))


def sinkhorn_divergence(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor], blur: float = 0.05,
                        scaling: float = 0.95, diameter: float = 1e7) -> torch.Tensor:
    """Debiased Sinkhorn divergences S_ε(α_k, β_k), ε = blur², cost ``|x − y|² / 2``, one per pair k.

    ``xs[k]`` (N, D_k) and ``ys[k]`` (N, D_k): two clouds of N points with
    uniform weights 1/N (every pair has the same N; D_k may differ).
    ``S_ε(α, β) = OT_ε(α, β) − ½ OT_ε(α, α) − ½ OT_ε(β, β)``, written with the
    dual potentials as ``⟨α, f_βα − f_αα⟩ + ⟨β, g_αβ − g_ββ⟩``.

    The algorithm is geomloss's tensorized one (``SamplesLoss("sinkhorn",
    p=2, debias=True)``): symmetric Sinkhorn updates of the four potentials
    with ε-scaling from diameter² down to blur², without gradient, then one
    last extrapolation step with gradient through the cost matrices' first
    arguments only (the envelope theorem gives the divergence's gradient).
    All K problems run as one batch. The ~375 gradient-free iterations on
    (K, 4, N, N) arrays run in NumPy, in the inputs' precision: thousands of
    tiny operations that torch would spread over its thread team (which, on
    a busy CPU, made them 10-40 times slower) or launch one by one on a GPU.
    """
    n = xs[0].shape[0]
    costs = torch.stack([
        torch.stack([_half_sq_distances(x, y.detach()), _half_sq_distances(y, x.detach()),
                     _half_sq_distances(x, x.detach()), _half_sq_distances(y, y.detach())])
        for x, y in zip(xs, ys)
    ])  # (K, 4, N, N): the problems β→α, α→β, α→α, β→β
    # potential 0 (f_βα) is updated from 1 (g_αβ) and vice versa; 2 and 3 from themselves
    partner = [1, 0, 2, 3]
    eps_list = epsilon_schedule(2, diameter, blur, scaling)
    c = costs.detach().cpu().numpy()
    log_w = np.full(n, -math.log(n), dtype=c.dtype)
    pot = _softmin_np(eps_list[0], c, np.broadcast_to(log_w, c.shape[:-1]))
    for eps in eps_list:
        pot = 0.5 * (pot + _softmin_np(eps, c, log_w + pot[:, partner] / eps))
    eps = eps_list[-1]
    h = torch.from_numpy(log_w + pot[:, partner] / eps).to(costs.device)
    pot = _softmin(eps, costs, h)
    f_ba, g_ab, f_aa, g_bb = pot.unbind(1)
    return (f_ba - f_aa).mean(-1) + (g_ab - g_bb).mean(-1)


def ssot_loss(proj: Sequence[torch.Tensor], perm: torch.Tensor) -> torch.Tensor:
    """Σ over levels of S_ε between the batch's softmax-normalised projected features and their permutation."""
    flat = [torch.softmax(p.flatten(1), -1) for p in proj]
    return sinkhorn_divergence(flat, [f[perm] for f in flat]).sum()


def projection_loss(noise_feats: Sequence[torch.Tensor], proj_noise: Sequence[torch.Tensor],
                    proj_clean: Sequence[torch.Tensor], perm: torch.Tensor | None = None,
                    ssot: bool = True) -> torch.Tensor:
    """L_proj of the module docstring; ``ssot=False`` leaves out its (identically zero) SSOT term."""
    b = proj_clean[0].shape[0]
    target = -torch.ones(b, device=proj_clean[0].device, dtype=proj_clean[0].dtype)
    rec = sum((1 - F.cosine_similarity(q, p, dim=1)).mean() for q, p in zip(proj_noise, proj_clean))
    con = sum(F.cosine_embedding_loss(n.flatten(1), p.flatten(1), target, margin=0.5)
              for n, p in zip(noise_feats, proj_clean))
    total = 0.01 * rec + 0.1 * con
    if ssot:
        total = total + ssot_loss(proj_clean, torch.arange(b) if perm is None else perm)
    return total / 1.11
