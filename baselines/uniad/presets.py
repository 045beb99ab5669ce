"""Registered presets of UniAD: the published ``uniad`` and our CPU-sized ``uniad-tiny``.

``uniad`` is the configuration ADer trains on COCO-AD
(``configs/uniad/uniad_coco.py``, identical in these values to
``configs/benchmark/uniad/uniad_256_100e.py``; the two differ in how ADer
scores: the benchmark config with ADEval, the evaluator's ``ader-bench``
profile, the paper's with sklearn, profile ``ader``): timm ``tf_efficientnet_b4``
levels 0–3 with the ImageNet weights of tag ``aa_in1k`` (the default tag of
the timm 0.8.15dev0 that ADer installs, and the file its benchmark config
names), ImageNet mean/std, 256×256, AdamW lr 1e-4 (1e-4 × batch / 8) betas
(0.9, 0.999) weight decay 1e-4 (not on biases and norms), batch 8 with the
last incomplete batch dropped, global-norm clipping at 5, LR ×0.1 after 80 of
100 epochs, seed 42; image score = max of the 16×16 average-pooled map
(``pooling_ks``).
"""

from __future__ import annotations

from baselines.common.presets import ADER_ADAMW, IMAGENET_MEAN, IMAGENET_STD, TINY_LITE0, Preset, register_preset

PAPER = "https://arxiv.org/abs/2206.03687"
CODE = "https://github.com/zhangzjn/ADer"

UNIAD = register_preset(Preset(
    name="uniad",
    method="uniad",
    display_name="UniAD",
    backbone="tf_efficientnet_b4.aa_in1k",
    out_indices=(0, 1, 2, 3),
    weights="hub",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    **ADER_ADAMW,
    model=dict(hidden_dim=256, heads=8, encoder_layers=4, decoder_layers=4, ff_dim=1024, dropout=0.1,
               neighbor_size=None, jitter_scale=20.0, jitter_prob=1.0, loss_weight=1.0),
    paper=PAPER,
    code=CODE,
    description="UniAD, published configuration (ADer): frozen ImageNet tf_efficientnet_b4 (aa_in1k) levels 0-3 "
                "aligned to 16x16 (272 ch), transformer 4+4 layers, hidden 256, 8 heads, neighbour mask 8x8, "
                "feature jitter 20; 256x256, AdamW lr 1e-4 betas (0.9, 0.999) wd 1e-4, batch 8, clip 5, "
                "LR x0.1 at 80% of 100 epochs; image score = max of the 16x16 average-pooled map",
))

UNIAD_TINY = register_preset(UNIAD.replace(
    name="uniad-tiny",
    display_name="UniAD-tiny",
    **TINY_LITE0,
    # levels 2-4 (strides 8/16/32) aligned to 8x8 tokens: UniAD's attention is quadratic in the tokens,
    # and 64 of them train on two CPU cores in the time budget where 256 (levels 1-3) would not
    out_indices=(2, 3, 4),
    batch_size=16,
    base_lr=1e-3,
    epochs=24,
    cache_features=True,
    # one encoder and one decoder layer: on the demo they learn within the budget where 2 + 2 do not
    # (2 + 2 layers, 10 epochs: mean I-AUROC 0.585, the loss barely below the features' variance)
    model=dict(UNIAD.model, hidden_dim=128, heads=4, encoder_layers=1, decoder_layers=1, ff_dim=256),
    description="UniAD-tiny (not published): the UniAD method (neighbour-masked attention, feature jitter 20, "
                "layer-wise query decoder) on the offline EfficientNet-Lite0 (tf_efficientnet_lite0 levels 2-4: "
                "40/112/320 ch aligned to 8x8 tokens, 472 ch), 1 + 1 layers, hidden 128, 4 heads, feed-forward 256; "
                "AdamW lr 2e-3, batch 16, 24 epochs; a CPU-sized model for the demo benchmark",
))
