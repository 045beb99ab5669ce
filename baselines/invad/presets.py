"""Registered presets of InvAD: the published ``invad`` and ``invad-lite``, and ``invad-tiny``.

``invad`` / ``invad-lite`` carry the published configuration (COCO-AD: 100
epochs; the paper trains 300 on MVTec AD — pass ``--epochs 300``).
``invad-tiny`` is ours: the same method on the offline EfficientNet-Lite0
backbone (its levels 2-4), one styled block per stage and a narrow latent,
sized so that a demo split trains on two CPU cores in a minute or two. It is
a CPU-scale model, not a published one.
"""

from __future__ import annotations

from baselines.common.presets import PACKAGE_WEIGHTS, Preset, register_preset

PAPER = "https://arxiv.org/abs/2404.10760"
CODE = "https://github.com/zhangzjn/ADer"

INVAD = register_preset(Preset(
    name="invad",
    method="invad",
    display_name="InvAD",
    backbone="wide_resnet50_2",
    out_indices=(1, 2, 3),
    weights="hub",
    model=dict(latent_ch=64, proj_cap=256, blocks=2, mod_ch=16, loss_weight=1.0, sigma=4.0),
    paper=PAPER,
    code=CODE,
    description="InvAD, published configuration: frozen ImageNet wide_resnet50_2 layers 1-3, 256x256, "
                "Adam lr 0.004 betas (0, 0.99), batch 32, clip 5, LR x0.1 at 80% of 100 epochs",
))

INVAD_LITE = register_preset(INVAD.replace(
    name="invad-lite",
    display_name="InvAD-lite",
    backbone="resnet34",
    model=dict(INVAD.model, blocks=4, loss_weight=5.0),
    description="InvAD-lite, published configuration: frozen ImageNet resnet34 layers 1-3, 4 styled blocks "
                "per stage, loss weight 5; otherwise as InvAD",
))

INVAD_TINY = register_preset(INVAD.replace(
    name="invad-tiny",
    display_name="InvAD-tiny",
    backbone="tf_efficientnet_lite0",
    # the deeper, more semantic EfficientNet levels (reductions 8/16/32): on the demo
    # they separate anomalous images better than levels 1-3 and cost less per step
    out_indices=(2, 3, 4),
    weights=PACKAGE_WEIGHTS,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    batch_size=8,
    epochs=12,
    cache_features=True,
    published=False,
    code="",
    model=dict(latent_ch=32, proj_cap=64, blocks=1, mod_ch=16, loss_weight=1.0, sigma=4.0),
    description="InvAD-tiny (not published): the InvAD method on the offline EfficientNet-Lite0 "
                "(tf_efficientnet_lite0 levels 2-4: 40/112/320 ch at 1/8, 1/16, 1/32), 1 styled block per "
                "stage, latent 32 ch, batch 8, 12 epochs; a CPU-sized model for the demo benchmark",
))
