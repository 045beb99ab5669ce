"""The "cv2" image rule of the shared dataset: OpenCV's INTER_LINEAR resize of the image in [0, 1]."""

import numpy as np
import pytest
import torch
from PIL import Image

from baselines.common.data import SplitImages, load_image, resize_linear, to_tensor
from baselines.common.errors import BaselineError
from benchmark import open_benchmark


def _opencv_linear(img: np.ndarray, size: int) -> np.ndarray:
    """OpenCV's INTER_LINEAR written from its definition: taps per axis, rows first, then columns."""
    def taps(n_in):
        pos = (np.arange(size) + 0.5) * (1.0 / (size / n_in)) - 0.5
        i0 = np.floor(pos).astype(int)
        frac = pos - i0
        edge = (i0 < 0) | (i0 >= n_in - 1)
        frac[edge] = 0.0
        i0 = np.clip(i0, 0, n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), frac

    y0, y1, fy = taps(img.shape[0])
    x0, x1, fx = taps(img.shape[1])
    rows = img[:, x0] * (1 - fx)[None, :, None] + img[:, x1] * fx[None, :, None]
    return rows[y0] * (1 - fy)[:, None, None] + rows[y1] * fy[:, None, None]


@pytest.mark.parametrize("shape, size", [((48, 64, 3), 32), ((30, 20, 3), 64), ((7, 9, 3), 7), ((256, 256, 3), 256),
                                         ((480, 640, 3), 256), ((5, 1000, 2), 37)])
def test_resize_linear_is_opencvs_rule(shape, size):
    img = np.random.default_rng(0).random(shape)
    out = resize_linear(img, size)
    assert out.dtype == np.float64 and out.shape == (size, size, shape[2])
    np.testing.assert_allclose(out, _opencv_linear(img, size), rtol=0, atol=1e-12)


def test_resize_linear_by_hand():
    # 1 × 4 → 1 × 2: positions (d + 0.5) · 2 − 0.5 = 0.5, 2.5 → means of pixel pairs; rows 1 → 3: edge clamped
    img = np.array([[[0.0], [1.0], [3.0], [7.0]]])
    assert resize_linear(img, 2)[:, :, 0].tolist() == [[0.5, 5.0], [0.5, 5.0]]
    up = resize_linear(np.array([[[0.0], [1.0]]]), 4)[0, :, 0]  # positions −0.25, 0.25, 0.75, 1.25
    assert up.tolist() == [0.0, 0.25, 0.75, 1.0]


def test_cv2_rule_reads_float_images_and_normalises_in_float64(make_benchmark):
    bench = open_benchmark(make_benchmark(n_train=2))
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    data = SplitImages(bench, "0", "train", 40, mean, std, resize="cv2")
    x, i = data[1]
    raw = load_image(bench.image_file(data.items[i]), None)
    expected = (resize_linear(raw / 255.0, 40) - np.array(mean)) / np.array(std)
    assert x.dtype == torch.float32 and tuple(x.shape) == (3, 40, 40)
    assert torch.equal(x, torch.from_numpy(expected.transpose(2, 0, 1)).float())
    # the default rule is Pillow's bilinear resize of the 8-bit image, unchanged
    pil = SplitImages(bench, "0", "train", 40, mean, std)[1][0]
    with Image.open(bench.image_file(data.items[i])) as im:
        ref = np.array(im.convert("RGB").resize((40, 40), Image.BILINEAR))
    assert torch.equal(pil, to_tensor(ref, mean, std))
    with pytest.raises(BaselineError, match="unknown resize rule"):
        SplitImages(bench, "0", "train", 40, mean, std, resize="lanczos")
