"""Images of one benchmark split as model input, the way the published code reads them.

Each image is opened with Pillow, converted to RGB, resized to
``size × size`` with Pillow's bilinear filter (what torchvision's ``Resize``
does to a PIL image, as ADer does), scaled to [0, 1] and normalised with the
backbone's mean and std. No augmentation, as published.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from baselines.common.errors import BaselineError
from benchmark import Benchmark, Item


def load_image(path, size: int) -> np.ndarray:
    """uint8 (size, size, 3) RGB array of the image file at ``path``."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.array(im, dtype=np.uint8)  # a writable copy
    except FileNotFoundError:
        raise BaselineError(
            f"{path}: image missing; check the benchmark folder (python -m benchmark.build verify)"
        ) from None
    except (UnidentifiedImageError, OSError) as e:
        raise BaselineError(f"{path}: unreadable image ({e})") from None


def to_tensor(img: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (H, W, 3) → float32 (3, H, W), ``(x / 255 - mean) / std`` per channel."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s


class SplitImages(torch.utils.data.Dataset):
    """The ``part`` ("train" or "test") images of one split of a benchmark.

    ``dataset[i]`` → ``(image tensor (3, size, size), i)``; ``dataset.items[i]``
    is the meta entry (sorted by ``img_path``, as the reader returns them).
    """

    def __init__(self, bench: Benchmark, split: str, part: str, size: int,
                 mean: Sequence[float], std: Sequence[float]):
        self.bench = bench
        self.items: list[Item] = list(bench.items(split, part))
        self.size = int(size)
        self.mean = tuple(mean)
        self.std = tuple(std)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        img = load_image(self.bench.image_file(self.items[i]), self.size)
        return to_tensor(img, self.mean, self.std), i
