"""Registered presets of ViTAD: the published ``vitad`` and our CPU-sized ``vitad-tiny``.

``vitad`` is ADer's COCO-AD configuration (``configs/vitad/vitad_coco.py``,
equal in every training value to ``configs/benchmark/vitad/vitad_256_100e.py``):
DINO ViT-S/16 teacher at 256×256, AdamW lr 1e-4 (1e-4 × batch / 8), betas
(0.9, 0.999), weight decay 1e-4 on matrices only, batch 8 with the last
incomplete batch dropped, gradients clipped to norm 5, 100 epochs with the
LR ×0.1 after 80, no warm-up, no augmentation; image score the maximum of
the 16×16 average-pooled map (``pooling_ks=[16, 16]``).

``vitad-tiny`` is ours (not published): the same recipe — frozen teacher,
deepest level fused by one linear layer, plain ViT decoder whose
intermediate tokens reconstruct the shallower levels in mirror order, cosine
loss, the same map and image score, AdamW with the same betas, weight decay
and clipping — on the offline EfficientNet-Lite0, sized so that a demo split
trains on two CPU cores in well under a minute. A CNN's levels differ in
width and size: the two shallower ones (1/8, 1/16) are area-averaged to the
deepest level's 8×8 grid and get a linear output head each (see
:mod:`baselines.vitad.model`). A 10× larger learning rate than the published
one lets its few steps (10 epochs of ~20 batches) converge; on the demo,
levels 2-4 on the 8×8 grid detected better than a 16×16 grid (mean
I-AUROC 82 vs 93) or levels 1-4 (91), at a fraction of the cost.
"""

from __future__ import annotations

from baselines.common.presets import ADER_ADAMW, IMAGENET_MEAN, IMAGENET_STD, TINY_LITE0, Preset, register_preset

PAPER = "https://arxiv.org/abs/2312.07495"
CODE = "https://github.com/zhangzjn/ADer"

VITAD = register_preset(Preset(
    name="vitad",
    method="vitad",
    display_name="ViTAD",
    backbone="vit_small_patch16_224.dino",
    # blocks 3, 6, 9 (teacher levels) and 12 (the fused neck), 0-based
    out_indices=(2, 5, 8, 11),
    weights="hub",
    encoder_kwargs={"img_size": 256},
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    **ADER_ADAMW,
    model=dict(neck=1, dim=384, depth=9, students=[3, 6, 9], num_heads=6, mlp_ratio=4.0, sigma=4.0),
    paper=PAPER,
    code=CODE,
    description="ViTAD, published configuration: frozen DINO ViT-S/16 (timm vit_small_patch16_224.dino) at "
                "256x256, blocks 3/6/9 reconstructed from block 12 by a linear fusion and a 9-block ViT-S "
                "decoder; cosine loss; AdamW lr 1e-4 betas (0.9, 0.999) wd 1e-4, batch 8, clip 5, "
                "LR x0.1 at 80% of 100 epochs; image score max of the 16x16 average-pooled map",
))

VITAD_TINY = register_preset(VITAD.replace(
    name="vitad-tiny",
    display_name="ViTAD-tiny",
    **TINY_LITE0,
    out_indices=(2, 3, 4),
    encoder_kwargs={},
    base_lr=1e-3,
    epochs=10,
    cache_features=True,
    model=dict(neck=1, dim=128, depth=4, students=[2, 4], num_heads=4, mlp_ratio=2.0, sigma=4.0),
    description="ViTAD-tiny (not published): the ViTAD recipe on the offline EfficientNet-Lite0 "
                "(tf_efficientnet_lite0 levels 2-4 at 256x256: the 40/112-ch 1/8 and 1/16 levels, area-averaged "
                "to the 8x8 token grid, reconstructed from the 320-ch 1/32 level), linear fusion to 128 ch, "
                "4-block ViT decoder (4 heads, MLP x2) tapped after blocks 2 and 4, a linear head per level; "
                "AdamW lr 1e-3, batch 8, 10 epochs; image score max of the 16x16 average-pooled map",
))
