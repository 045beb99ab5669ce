"""Mask files: deterministic PNG bytes, normalisation of source masks, COCO rasterisation."""

from __future__ import annotations

import io

import numpy as np
import pycocotools.mask as mu
from PIL import Image

from benchmark import masks

from .conftest import rle_counts_list, rle_string


def test_png_is_8bit_single_channel_and_lossless():
    m = (np.random.default_rng(0).uniform(size=(37, 53)) > 0.5).astype(np.uint8) * 255
    data = masks.encode_png(m)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG" and im.mode == "L" and im.size == (53, 37)
        np.testing.assert_array_equal(np.asarray(im), m)
        assert not im.info.get("dpi") and not getattr(im, "text", {})
    assert masks.encode_png(m.copy()) == data


def test_read_mask_file_normalises_every_common_encoding(tmp_path):
    ref = np.zeros((9, 11), bool)
    ref[2:6, 3:9] = True
    cases = {
        "l01.png": Image.fromarray(ref.astype(np.uint8)),  # VisA-style 0/1
        "l255.png": Image.fromarray(ref.astype(np.uint8) * 255),
        "bilevel.png": Image.fromarray(ref.astype(np.uint8) * 255).convert("1"),
        "rgb.png": Image.fromarray(np.stack([ref.astype(np.uint8) * 200] * 3, axis=2)),
        "pal.png": Image.fromarray(ref.astype(np.uint8)).convert("P"),
    }
    for name, im in cases.items():
        im.save(tmp_path / name)
        got = masks.read_mask_file(tmp_path / name)
        assert got.dtype == np.uint8 and set(np.unique(got)) <= {0, 255}, name
        np.testing.assert_array_equal(got > 0, ref, err_msg=name)


def test_segmentation_to_rle_follows_pycocotools_for_each_kind():
    h, w = 30, 40
    blob = np.zeros((h, w), bool)
    blob[5:20, 7:31] = True
    blob[12:14, :] = True
    poly2 = [[2, 2, 15, 3, 9, 14], [20.5, 20, 38, 22, 30, 29, 21, 27]]
    want_poly = mu.decode(mu.merge(mu.frPyObjects(poly2, h, w)))
    for segm, want in [
        (poly2, want_poly),
        (rle_counts_list(blob), blob.astype(np.uint8)),
        (rle_string(blob), blob.astype(np.uint8)),
        ([], np.zeros((h, w), np.uint8)),
        ([[1, 1, 5, 1, 9, 1]], np.zeros((h, w), np.uint8)),  # zero area
    ]:
        np.testing.assert_array_equal(mu.decode(masks.segmentation_to_rle(segm, h, w)), want)
    u = masks.union_mask([poly2, rle_string(blob)], h, w)
    np.testing.assert_array_equal(u, ((want_poly > 0) | blob).astype(np.uint8) * 255)
