"""Images of one benchmark split as model input, the way the published code reads them.

Each image is opened with Pillow, converted to RGB, resized to
``size × size`` with Pillow's bilinear filter (what torchvision's ``Resize``
does to a PIL image, as ADer does), scaled to [0, 1] and normalised with the
backbone's mean and std. No augmentation, as published.

``resize="cv2"`` follows ADer's RD++ dataset instead: the 8-bit image is
scaled to [0, 1] first and resized with OpenCV's ``INTER_LINEAR`` rule
(two taps per axis, no antialiasing, float result — see
:func:`resize_linear`), then normalised in float64. OpenCV itself is not
needed. Pixels are read as stored (no EXIF rotation, which ``cv2.imread``
would apply), so that the image and its ground-truth mask stay aligned.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from baselines.common.errors import BaselineError
from benchmark import Benchmark, Item


#: the resize rules of :class:`SplitImages` (``Preset.resize``)
RESIZES = ("pil", "cv2")


def load_image(path, size: int | None) -> np.ndarray:
    """uint8 (size, size, 3) RGB array of the image file at ``path`` (``size=None``: as stored)."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.array(im, dtype=np.uint8)  # a writable copy
    except FileNotFoundError:
        raise BaselineError(
            f"{path}: image missing; check the benchmark folder (python -m benchmark.build verify)"
        ) from None
    except (UnidentifiedImageError, OSError) as e:
        raise BaselineError(f"{path}: unreadable image ({e})") from None


def resize_linear(img: np.ndarray, size: int) -> np.ndarray:
    """float64 (size, size, C) resize of a float (H, W, C) array by OpenCV's ``INTER_LINEAR`` rule.

    Output pixel d along an axis of n_in input pixels samples the input at
    ``(d + 0.5) · n_in / size − 0.5`` (pixel centres aligned), linearly
    between the two neighbouring pixels; positions left of the first or
    right of the last pixel centre take the edge pixel. No antialiasing:
    shrinking by more than 2 skips pixels. That is torch's bilinear
    interpolation with ``align_corners=False`` and ``antialias=False``, which
    computes it here in float64. Measured against ``cv2.resize``
    (opencv-python-headless 5.0) on 3-channel float64 images from 90 to
    1000 pixels a side, resized to 256, 192, 64 and 37: equal to 2.3e-16.
    """
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float64)).permute(2, 0, 1)[None]
    out = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return out[0].permute(1, 2, 0).numpy()


def load_image_linear(path, size: int) -> np.ndarray:
    """float64 (size, size, 3) RGB in [0, 1]: the image at ``path`` / 255, resized by :func:`resize_linear`."""
    return resize_linear(load_image(path, None) / 255.0, size)


def to_tensor(img: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(H, W, 3) → float32 (3, H, W) normalised per channel.

    uint8: ``(x / 255 - mean) / std`` in float32. float (already in [0, 1]):
    ``(x - mean) / std`` in float64, then float32 (ADer's RD++ dataset).
    """
    if img.dtype != np.uint8:
        x = (np.asarray(img, dtype=np.float64) - np.asarray(mean, dtype=np.float64)) / np.asarray(std, np.float64)
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))).float()
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s


class SplitImages(torch.utils.data.Dataset):
    """The ``part`` ("train" or "test") images of one split of a benchmark, resized by rule ``resize``.

    ``dataset[i]`` → ``(image tensor (3, size, size), i)``; ``dataset.items[i]``
    is the meta entry (sorted by ``img_path``, as the reader returns them).
    """

    def __init__(self, bench: Benchmark, split: str, part: str, size: int,
                 mean: Sequence[float], std: Sequence[float], resize: str = "pil"):
        if resize not in RESIZES:
            raise BaselineError(f"unknown resize rule {resize!r} (known: {', '.join(RESIZES)})")
        self.resize = resize
        self.bench = bench
        self.items: list[Item] = list(bench.items(split, part))
        self.size = int(size)
        self.mean = tuple(mean)
        self.std = tuple(std)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path = self.bench.image_file(self.items[i])
        img = load_image_linear(path, self.size) if self.resize == "cv2" else load_image(path, self.size)
        return to_tensor(img, self.mean, self.std), i
