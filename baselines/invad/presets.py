"""Registered presets of InvAD: the published ``invad`` and ``invad-lite``, and ``invad-tiny``.

``invad`` / ``invad-lite`` are ADer's ``configs/invad/invad_coco.py`` and
``configs/invad/invad_lite/lite_coco.py`` (COCO-AD: 100 epochs; the paper
trains 300 on MVTec AD — pass ``--epochs 300``): encoder with the timm
pretrained tag the official weights file names (``racm_in1k``,
``bt_in1k``), ImageNet mean/std, Adam lr 0.001 × 32 / 8 with betas (0, 0.99)
and no weight decay (the configs set ``weight_decay`` but never pass it to
the optimiser), gradients clipped to norm 5, LR × 0.1 after int(0.8 · epochs)
epochs, the last incomplete batch dropped.
``invad-tiny`` is ours: the same architecture on the offline
EfficientNet-Lite0 backbone (its levels 2-4), sized so that the 4 demo splits
train and predict on two CPU cores in about two minutes. It is a CPU-scale
model, not a published one.
"""

from __future__ import annotations

from baselines.common.presets import IMAGENET_MEAN, IMAGENET_STD, TINY_LITE0, Preset, register_preset

PAPER = "https://arxiv.org/abs/2404.10760"
CODE = "https://github.com/zhangzjn/ADer"

INVAD = register_preset(Preset(
    name="invad",
    method="invad",
    display_name="InvAD",
    backbone="wide_resnet50_2.racm_in1k",
    out_indices=(1, 2, 3),
    weights="hub",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    drop_last=True,
    model=dict(style_ch=64, latent_ch=16, blocks=2, lr_mul=0.01, conv_num=1, bottle_num=1, loss_weight=1.0,
               sigma=4.0),
    paper=PAPER,
    code=CODE,
    description="InvAD, published configuration (ADer configs/invad/invad_coco.py): frozen ImageNet "
                "wide_resnet50_2 (racm_in1k) layers 1-3, 256x256, 2 styled blocks per stage, Adam lr 0.004 "
                "betas (0, 0.99), batch 32, clip 5, LR x0.1 after 80 of 100 epochs",
))

INVAD_LITE = register_preset(INVAD.replace(
    name="invad-lite",
    display_name="InvAD-lite",
    backbone="resnet34.bt_in1k",
    model=dict(INVAD.model, blocks=4, loss_weight=5.0),
    description="InvAD-lite, published configuration (ADer configs/invad/invad_lite/lite_coco.py): frozen "
                "ImageNet resnet34 (bt_in1k) layers 1-3, 4 styled blocks per stage, loss weight 5; otherwise "
                "as InvAD",
))

INVAD_TINY = register_preset(INVAD.replace(
    name="invad-tiny",
    display_name="InvAD-tiny",
    **TINY_LITE0,
    # the deeper, more semantic EfficientNet levels (reductions 8/16/32): on the demo
    # they separate anomalous images better than levels 1-3 and cost less per step
    out_indices=(2, 3, 4),
    # 192 px, batches of 4 at lr 0.004 (base 0.008 per 8) and 8 epochs: on the demo, mean exact I-AUROC /
    # P-AUROC over the 4 splits 83.3 / 93.7 in the main job (two threads), where 256 px, batch 8, lr 0.001
    # and 12 epochs gave 75.6 / 94.0 (the equalised-LR layers move slowly at the linearly scaled LR); with
    # one thread 84.6 / 93.9 against 76.9 / 94.3, in 259 s of training CPU against 462 s
    image_size=192,
    batch_size=4,
    base_lr=0.008,
    epochs=8,
    cache_features=True,
    model=dict(INVAD.model, blocks=1),
    description="InvAD-tiny (not published): the official InvAD architecture on the offline EfficientNet-Lite0 "
                "(tf_efficientnet_lite0 levels 2-4: 40/112/320 ch at 1/8, 1/16, 1/32), 1 styled block per "
                "stage, 192x192, batch 4, Adam lr 0.004, 8 epochs; a CPU-sized model for the demo benchmark",
))
