"""The framework the reconstruction baselines share.

- :mod:`~baselines.common.presets`: named, registered configurations.
- :mod:`~baselines.common.encoder`: the frozen timm feature encoder and its weights.
- :mod:`~baselines.common.data`: a benchmark split's images as model input.
- :mod:`~baselines.common.model`: the model interface and the method registry.
- :mod:`~baselines.common.maps`: anomaly maps (1 − cosine, Gaussian smoothing).
- :mod:`~baselines.common.engine`: the training loop (checkpoints, resume, DDP).
- :mod:`~baselines.common.predict`: test maps into a submission folder.
- :mod:`~baselines.common.runtime`: device, threads, seeds, torchrun.
- :mod:`~baselines.common.cli`: ``train`` / ``predict`` / ``run`` / ``presets``.
"""
