"""Registered presets of RD: the published ``rd`` and our CPU-sized ``rd-tiny``.

``rd`` is ADer's ``configs/benchmark/rd/rd_256_100e.py`` as it actually
trains: frozen ImageNet wide_resnet50_2 (timm, ``racm_in1k``) layers 1–3 at
256×256 (Pillow bilinear resize, ImageNet normalisation), batch 16 with the
last incomplete batch dropped, Adam lr 0.005 betas (0.5, 0.999) and no weight
decay (the config's ``weight_decay = 0.05`` never reaches the optimiser),
gradients clipped to global norm 5, LR ×0.1 after 80 of 100 epochs, no
warm-up, seed 42; image score = map maximum (``pooling_ks=None``: score
without ``--pool``).
"""

from __future__ import annotations

from baselines.common.presets import TINY_LITE0, Preset, register_preset

PAPER = "https://arxiv.org/abs/2201.10703"
CODE = "https://github.com/zhangzjn/ADer"

RD = register_preset(Preset(
    name="rd",
    method="rd",
    display_name="RD",
    backbone="wide_resnet50_2",
    out_indices=(1, 2, 3),
    weights="hub",
    image_size=256,
    batch_size=16,
    base_lr=0.005,
    lr_batch=16,
    betas=(0.5, 0.999),
    weight_decay=0.0,
    grad_clip=5.0,
    epochs=100,
    lr_step=0.8,
    lr_gamma=0.1,
    seed=42,
    drop_last=True,
    model=dict(decoder_blocks=[3, 4, 6], decoder_width=128, fusion_blocks=3, fusion_width=64, sigma=4.0),
    paper=PAPER,
    code=CODE,
    description="RD, published configuration (ADer rd_256_100e): frozen ImageNet wide_resnet50_2 layers 1-3, "
                "256x256, Adam lr 0.005 betas (0.5, 0.999), batch 16 (last incomplete dropped), clip 5, "
                "LR x0.1 after 80 of 100 epochs",
))

RD_TINY = register_preset(RD.replace(
    name="rd-tiny",
    display_name="RD-tiny",
    **TINY_LITE0,
    out_indices=(2, 3, 4),
    batch_size=8,
    epochs=10,
    drop_last=False,
    cache_features=True,
    model=dict(decoder_blocks=[1, 1, 1], decoder_width=64, fusion_blocks=1, fusion_width=64, sigma=4.0),
    description="RD-tiny (not published): the RD method on the offline EfficientNet-Lite0 "
                "(tf_efficientnet_lite0 levels 2-4: 40/112/320 ch at 1/8, 1/16, 1/32), one block per "
                "decoder stage and in the bottleneck, batch 8, 10 epochs; a CPU-sized model for the demo",
))
