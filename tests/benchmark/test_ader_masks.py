"""``--masks ader``: masks equal to those of ADer's ``data/gen_benchmark/coco.py``, pixel for pixel.

The expected masks come from :func:`ader_reference`, written here as ADer's
script runs (3-channel canvas shaped like ``cv2.imread``'s image, ``fillPoly``
per polygon part on int64-cast vertices, RLE through pycocotools, the PNG
written by ``cv2.imwrite`` and its first channel read back), never through the
builder's functions. The source is the shared test source with three JPEGs
rewritten so that they decode at another size than their annotation's width
and height: one through an EXIF rotation, one larger, one smaller.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image

from benchmark import open_benchmark
from benchmark.build import main

from .conftest import VAL_SCENES, tree_bytes

cv2 = pytest.importorskip("cv2")  # the test extra installs it (ader-masks); CI fails on a skip

SPLITS = ["0", "1", "2", "3"]


def ader_reference(root: Path, info: dict, anns: list[dict], png: Path) -> np.ndarray:
    """ADer's mask of one image (``anns``: its anomaly-class annotations), first channel of its PNG."""
    img = cv2.imread(str(root / "val2017" / info["file_name"]))
    img_mask = np.zeros(img.shape, dtype=img.dtype)
    for ann in anns:
        if isinstance(ann["segmentation"], list):
            for seg in ann["segmentation"]:
                pts = np.array(seg).astype(np.int64).reshape((len(seg) // 2, 2))
                img_mask = cv2.fillPoly(img_mask, [pts], (255, 255, 255))
        else:
            if isinstance(ann["segmentation"]["counts"], list):
                rle = mask_utils.frPyObjects([ann["segmentation"]], info["height"], info["width"])
            else:
                rle = [ann["segmentation"]]
            mask = mask_utils.decode(rle)
            img_mask[mask.repeat(3, axis=2) > 0.5] = 255
    assert cv2.imwrite(str(png), img_mask)
    back = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert back.shape == img.shape and (back == back[..., :1]).all()
    return back[..., 0]


def rle_placed(info: dict, anns: list[dict], size: tuple[int, int]) -> np.ndarray:
    """Where ADer's script fails (RLE on an image decoded at another size): pixels at their own coordinates, clipped."""
    out = np.zeros(size, np.uint8)
    for ann in anns:
        segm = ann["segmentation"]
        rle = mask_utils.frPyObjects(segm, info["height"], info["width"]) if isinstance(segm["counts"], list) else segm
        m = mask_utils.decode(rle).astype(bool)
        h, w = min(size[0], m.shape[0]), min(size[1], m.shape[1])
        out[:h, :w][m[:h, :w]] = 255
    return out


def _rewrite_jpeg(path: Path, size: tuple[int, int] | None = None, exif_rotate: bool = False) -> None:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None:
            im = im.resize((size[1], size[0]))
    if exif_rotate:
        ex = Image.Exif()
        ex[0x0112] = 6  # rotate 90° clockwise on display: OpenCV decodes it as width × height swapped
        im.save(path, quality=90, exif=ex.tobytes())
    else:
        im.save(path, quality=90)


@pytest.fixture(scope="module")
def source(coco_source, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ader") / "coco"
    shutil.copytree(coco_source, root)
    images = json.loads((root / "annotations" / "instances_val2017.json").read_text())["images"]  # in VAL_SCENES order
    assert VAL_SCENES[6] == [(0, "poly"), (1, "poly2")] and VAL_SCENES[7] == [(6, "poly"), (2, "rle_str")]
    assert VAL_SCENES[11] == [(7, "rle_list")]
    # polygons of one and two parts on an EXIF-rotated JPEG: decoded as the annotation's size transposed
    _rewrite_jpeg(root / "val2017" / images[6]["file_name"], exif_rotate=True)
    # a polygon (split 3) and a compressed RLE (split 1) on a JPEG larger than its annotation says
    _rewrite_jpeg(root / "val2017" / images[7]["file_name"], size=(images[7]["height"] + 5, images[7]["width"] + 9))
    # an uncompressed crowd RLE on a JPEG smaller than its annotation says
    _rewrite_jpeg(root / "val2017" / images[11]["file_name"], size=(images[11]["height"] - 6, images[11]["width"] - 4))
    return root


def _build(src: Path, out: Path, *extra: str) -> Path:
    assert main(["coco-ad", "--coco-root", str(src), "--out", str(out), "--quiet", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def ader(source, tmp_path_factory) -> Path:
    return _build(source, tmp_path_factory.mktemp("ader-built") / "bench", "--masks", "ader", "--workers", "2")


@pytest.fixture(scope="module")
def coco(source, tmp_path_factory) -> Path:
    return _build(source, tmp_path_factory.mktemp("coco-built") / "bench")


def anomaly_annotations(src: Path, k: int) -> dict[str, tuple[dict, list[dict]]]:
    """{val img_path: (image entry, its annotations of split k's anomaly classes)} of split k's anomalous images."""
    doc = json.loads((src / "annotations" / "instances_val2017.json").read_text())
    ids = sorted(c["id"] for c in doc["categories"])
    anomalous = {ids[2 * k], ids[2 * k + 1]}
    images = {im["id"]: im for im in doc["images"]}
    out: dict[str, tuple[dict, list[dict]]] = {}
    for a in doc["annotations"]:
        if a["category_id"] in anomalous:
            im = images[a["image_id"]]
            out.setdefault(f"val2017/{im['file_name']}", (im, []))[1].append(a)
    return out


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "L"
        return np.asarray(im)


def test_masks_equal_aders_rule_pixel_for_pixel(source, ader, tmp_path):
    b = open_benchmark(ader)
    kinds = set()
    for k, sid in enumerate(SPLITS):
        expected = anomaly_annotations(source, k)
        items = [it for it in b.items(sid) if it.anomaly]
        assert sorted(it.img_path for it in items) == sorted(expected)
        for it in items:
            info, anns = expected[it.img_path]
            got = _read(b.mask_file(it))
            size = cv2.imread(str(source / it.img_path)).shape[:2]
            assert got.shape == size
            is_rle = [isinstance(a["segmentation"], dict) for a in anns]
            if size != (info["height"], info["width"]) and any(is_rle):
                kinds.add("rle-other-size")
                assert all(is_rle)
                want = rle_placed(info, anns, size)
            else:
                kinds.add("polygons" if not any(is_rle) else "rle" if all(is_rle) else "mixed")
                if size != (info["height"], info["width"]):
                    kinds.add("transposed" if size == (info["width"], info["height"]) else "other-size")
                want = ader_reference(source, info, anns, tmp_path / "ader.png")
            np.testing.assert_array_equal(got, want, err_msg=f"split {sid} {it.img_path}")
    assert kinds >= {"polygons", "rle", "mixed", "transposed", "other-size", "rle-other-size"}, kinds


def _fractional(anns: list[dict]) -> bool:
    return any(isinstance(a["segmentation"], list) and any(v != int(v) for p in a["segmentation"] for v in p)
               for a in anns)


def test_masks_differ_from_pycocotools_where_expected(source, ader, coco):
    a, c = open_benchmark(ader), open_benchmark(coco)
    seen = {"equal": 0, "differ": 0, "zero-area": 0}
    for k, sid in enumerate(SPLITS):
        assert a.items(sid) == c.items(sid) and a.items(sid, "train") == c.items(sid, "train")  # same lists and labels
        expected = anomaly_annotations(source, k)
        for it in (it for it in a.items(sid) if it.anomaly):
            info, anns = expected[it.img_path]
            ma, mc = _read(a.mask_file(it)), _read(c.mask_file(it))
            assert mc.shape == (info["height"], info["width"])
            same_size = ma.shape == mc.shape
            if all(isinstance(a_["segmentation"], list) for a_ in anns) and not mc.any():
                assert ma.any()  # fillPoly draws the degenerate polygon as a line; pycocotools draws nothing
                seen["zero-area"] += 1
            elif same_size and all(isinstance(a_["segmentation"], dict) for a_ in anns):
                np.testing.assert_array_equal(ma, mc)  # RLE is decoded by pycocotools in both modes
                seen["equal"] += 1
            elif _fractional(anns):
                assert not same_size or (ma != mc).any(), it.img_path
                seen["differ"] += 1
    assert seen["equal"] >= 2 and seen["differ"] >= 6 and seen["zero-area"] == 1, seen


def test_rebuild_is_byte_identical(source, ader, tmp_path, capsys):
    again = _build(source, tmp_path / "again", "--masks", "ader", "--workers", "1")
    assert "note: 3 anomalous image(s) decode at another size" in capsys.readouterr().out
    assert tree_bytes(again) == tree_bytes(ader)
    _build(source, again, "--masks", "ader")
    assert tree_bytes(again) == tree_bytes(ader)


def test_mode_is_recorded_read_and_verified(ader, coco, capsys):
    m = json.loads((ader / "benchmark.json").read_text())
    assert m["masks"] == "ader" and m["builder"]["opencv"] == cv2.__version__
    assert open_benchmark(ader).masks == "ader" and open_benchmark(coco).masks == "pycocotools"
    assert open_benchmark(ader).sha256 != open_benchmark(coco).sha256
    for meta in (p.name for p in ader.glob("meta_*.json")):
        assert (ader / meta).read_bytes() == (coco / meta).read_bytes()
    assert main(["verify", str(ader)]) == 0
    assert "masks: ader (ADer's OpenCV fillPoly rule)" in capsys.readouterr().out


def test_modes_never_share_a_manifest(source, tmp_path, capsys):
    out = _build(source, tmp_path / "mixed", "--splits", "0")
    before = tree_bytes(out)
    assert main(["coco-ad", "--coco-root", str(source), "--out", str(out), "--splits", "1", "--masks", "ader", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "split(s) 0" in err and "--masks pycocotools" in err
    assert tree_bytes(out) == before
    _build(source, out, "--splits", "0", "1", "--masks", "ader")  # rebuilding every split it holds switches the mode
    assert open_benchmark(out).masks == "ader" and main(["verify", str(out)]) == 0


@pytest.mark.parametrize("cmd", ["coco-ad", "demo"])
@pytest.mark.parametrize("opencv", ["missing", "4.11.0", "4.7.0"])
def test_without_a_suitable_opencv_the_option_is_one_line(coco_source, tmp_path, capsys, monkeypatch, cmd, opencv):
    if opencv == "missing":
        monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 raises ImportError
    else:
        monkeypatch.setattr(cv2, "__version__", opencv)
    out = tmp_path / "out"
    args = ["--coco-root", str(coco_source)] if cmd == "coco-ad" else []
    assert main([cmd, *args, "--out", str(out), "--masks", "ader", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ader-masks" in err and "Traceback" not in err
    assert ("not installed" in err) if opencv == "missing" else (f"found {opencv}" in err and "4.8–4.10" in err)
    assert not out.exists()


def _val_doc(root: Path) -> tuple[Path, dict]:
    path = root / "annotations" / "instances_val2017.json"
    return path, json.loads(path.read_text())


@pytest.mark.parametrize("defect", ["odd-coordinates", "empty-part", "huge-coordinate", "unreadable-jpeg"])
def test_what_aders_rule_cannot_draw_is_one_line(coco_copy, tmp_path, capsys, defect):
    path, doc = _val_doc(coco_copy)
    poly = next(a for a in doc["annotations"] if isinstance(a["segmentation"], list) and len(a["segmentation"]) == 1
                and len(a["segmentation"][0]) > 6)
    name = next(im["file_name"] for im in doc["images"] if im["id"] == poly["image_id"])
    if defect == "unreadable-jpeg":
        (coco_copy / "val2017" / name).write_bytes(b"\xff\xd8 not a jpeg")
        needles = ["1 image file(s) OpenCV cannot decode", name]
    else:
        part = {"odd-coordinates": poly["segmentation"][0] + [3.5], "empty-part": [],
                "huge-coordinate": poly["segmentation"][0][:-1] + [3e9]}[defect]
        poly["segmentation"] = poly["segmentation"] + [part]
        path.write_text(json.dumps(doc))
        needles = [name, "polygon part 1", "--masks pycocotools"]
    out = tmp_path / "out"
    assert main(["coco-ad", "--coco-root", str(coco_copy), "--out", str(out), "--masks", "ader", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)
    assert not out.exists()
