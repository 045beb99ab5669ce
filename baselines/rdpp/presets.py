"""Registered presets of RD++: the published ``rdpp`` and our CPU-sized ``rdpp-tiny``.

``rdpp`` is ADer's ``configs/benchmark/rd++/rd++_256_100e.py`` as it actually
trains (``trainer/rdpp_trainer.py``, ``data/ad_dataset.py`` ``RDPPAD``): RD's
network (:mod:`baselines.rd.presets`) plus the projection layers; images read
by OpenCV's rule (``resize="cv2"``: linear resize of the image in [0, 1], no
antialiasing) for training and testing; batch 16, last incomplete batch
dropped; Adam betas (0.5, 0.999), no weight decay, the projections at lr
0.001 and bottleneck + decoder at 0.005; gradients clipped to global norm 5;
loss RD's cosine loss + 0.2 · L_proj with the synthetic noise; 100 epochs,
seed 42; image score = map maximum (``pooling_ks=None``). Two facts of the
official trainer that its config does not show:

- the optimiser steps only on every second iteration (``step_every=2``):
  each iteration clears the gradients first, so the other half of the
  batches only move BatchNorm statistics;
- the learning rate never drops (``lr_gamma=1``): the step schedule
  (×0.1 after 80 epochs) is attached to the trainer's default optimiser,
  which RD++'s trainer replaces by its own two and never steps.
"""

from __future__ import annotations

from baselines.common.presets import register_preset
from baselines.rd.presets import RD, RD_TINY

PAPER = "https://openaccess.thecvf.com/content/CVPR2023/html/Tien_Revisiting_Reverse_Distillation_for_Anomaly_Detection_CVPR_2023_paper.html"

RDPP = register_preset(RD.replace(
    name="rdpp",
    method="rdpp",
    display_name="RD++",
    base_lr=0.001,
    lr_gamma=1.0,
    step_every=2,
    resize="cv2",
    model=dict(RD.model, distill_lr_scale=5.0, ssot=True),
    paper=PAPER,
    description="RD++, published configuration (ADer rd++_256_100e): RD's network with projection layers and "
                "simplex-noise training, frozen ImageNet wide_resnet50_2 layers 1-3, 256x256 (OpenCV-style resize), "
                "Adam betas (0.5, 0.999) lr 0.001 (projections) / 0.005 (bottleneck, decoder), batch 16, "
                "optimiser step on every 2nd batch, clip 5, constant LR, 100 epochs",
))

RDPP_TINY = register_preset(RD_TINY.replace(
    name="rdpp-tiny",
    method="rdpp",
    display_name="RD++-tiny",
    paper=PAPER,
    base_lr=RDPP.base_lr,
    lr_gamma=RDPP.lr_gamma,
    resize=RDPP.resize,
    image_size=192,
    epochs=5,
    model=dict(RD_TINY.model, distill_lr_scale=5.0, ssot=True),
    description="RD++-tiny (not published): the RD++ method on RD-tiny's network (offline EfficientNet-Lite0 "
                "levels 2-4, one block per decoder stage and in the bottleneck) at 192x192, batch 8, "
                "an optimiser step on every batch, 5 epochs; a CPU-sized model for the demo",
))
