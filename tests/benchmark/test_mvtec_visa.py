"""MVTec AD and VisA layouts → the one-split benchmark folder, on tiny hand-made sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark import open_benchmark
from benchmark.build import main

from .conftest import tree_bytes


def _img(path: Path, h=24, w=32, seed=0, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)


def _mask(path: Path, m: np.ndarray, mode="L", scale=255):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(m.astype(np.uint8) * scale)
    if mode != "L":
        im = im.convert(mode)
    im.save(path)


def _rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture
def mvtec(tmp_path):
    root = tmp_path / "mvtec"
    masks = {}
    for c, cls in enumerate(("bottle", "cable")):
        for i in range(3):
            _img(root / cls / "train" / "good" / f"{i:03d}.png", seed=10 * c + i)
        _img(root / cls / "test" / "good" / "000.png", seed=100 + c)
        defect = "broken" if cls == "bottle" else "cut"
        for i in range(2):
            _img(root / cls / "test" / defect / f"{i:03d}.png", seed=200 + 10 * c + i)
            m = _rect(24, 32, 2 + i, 10 + i, 3, 20 - c)
            # cable's masks are stored 0/1 and RGB, as some re-saved copies are
            _mask(root / cls / "ground_truth" / defect / f"{i:03d}_mask.png", m,
                  mode="RGB" if cls == "cable" else "L", scale=1 if cls == "cable" and i == 1 else 255)
            masks[f"{cls}/test/{defect}/{i:03d}.png"] = m
    (root / "license.txt").write_text("CC BY-NC-SA 4.0")
    (root / "docs").mkdir()  # not a class: no train/ and test/
    return root, masks


def test_mvtec_layout(mvtec, tmp_path):
    root, masks = mvtec
    out = tmp_path / "bench"
    assert main(["mvtec", "--root", str(root), "--out", str(out), "--quiet"]) == 0
    m = json.loads((out / "benchmark.json").read_text())
    assert m["name"] == "mvtec-ad" and list(m["splits"]) == ["0"]
    e = m["splits"]["0"]
    assert e["meta"] == "meta_0.json" and e["mask_dir"] == "mask_ad_0"
    assert e["normal_classes"] == ["bottle", "cable"] and e["anomaly_classes"] == ["bottle/broken", "cable/cut"]
    assert e["counts"] == {"train": 6, "test_normal": 2, "test_anomalous": 4}
    meta = json.loads((out / "meta_0.json").read_text())
    assert sorted(meta["train"]) == ["bottle", "cable"] and sorted(meta["test"]) == ["bottle", "cable"]
    assert meta["train"]["bottle"][0] == {"img_path": "bottle/train/good/000.png", "mask_path": "", "cls_name": "bottle",
                                          "specie_name": "good", "anomaly": 0}
    test = {d["img_path"]: d for lst in meta["test"].values() for d in lst}
    assert test["cable/test/good/000.png"]["anomaly"] == 0 and test["cable/test/good/000.png"]["specie_name"] == "good"
    for img, ref in masks.items():
        d = test[img]
        assert d["anomaly"] == 1 and d["specie_name"] == img.split("/")[2]
        assert d["mask_path"] == "mask_ad_0/" + img
        with Image.open(out / d["mask_path"]) as im:
            assert im.mode == "L"
            np.testing.assert_array_equal(np.asarray(im), ref.astype(np.uint8) * 255)
    assert (out / "bottle").is_symlink() and (out / "cable").is_symlink() and not (out / "docs").exists()
    b = open_benchmark(out)
    assert b.classes("0") == ["bottle", "cable"]
    assert all(b.image_file(it).is_file() for it in b.items("0") + b.items("0", "train"))
    assert main(["verify", str(out)]) == 0
    before = tree_bytes(out)
    assert main(["mvtec", "--root", str(root), "--out", str(out), "--quiet"]) == 0
    assert tree_bytes(out) == before


def test_mvtec_default_out_leaves_the_source_masks_alone(mvtec):
    root, _ = mvtec
    src = (root / "cable/ground_truth/cut/001_mask.png").read_bytes()
    assert main(["mvtec", "--root", str(root), "--quiet"]) == 0
    assert (root / "benchmark.json").is_file() and (root / "mask_ad_0/cable/test/cut/001.png").is_file()
    assert (root / "cable/ground_truth/cut/001_mask.png").read_bytes() == src


def test_mvtec_missing_mask(mvtec, tmp_path, capsys):
    root, _ = mvtec
    (root / "bottle/ground_truth/broken/001_mask.png").unlink()
    assert main(["mvtec", "--root", str(root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "1 ground-truth mask file(s) missing" in err and "001_mask.png" in err
    assert not (tmp_path / "o").exists()


def test_mvtec_not_a_layout(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["mvtec", "--root", str(tmp_path / "empty")]) == 2
    assert "MVTec AD layout" in capsys.readouterr().err
    assert list((tmp_path / "empty").iterdir()) == []


@pytest.fixture
def visa(tmp_path):
    root = tmp_path / "visa"
    rows = ["object,split,label,image,mask"]
    masks = {}
    for c, obj in enumerate(("candle", "pcb1")):
        for i in range(3):
            rel = f"{obj}/Data/Images/Normal/{i:04d}.JPG"
            _img(root / rel, seed=c * 10 + i, fmt="JPEG")
            rows.append(f"{obj},train,normal,{rel},")
        rel = f"{obj}/Data/Images/Normal/0100.JPG"
        _img(root / rel, seed=50 + c, fmt="JPEG")
        rows.append(f"{obj},test,normal,{rel},")
        for i in range(2):
            rel = f"{obj}/Data/Images/Anomaly/{i:03d}.JPG"
            mrel = f"{obj}/Data/Masks/Anomaly/{i:03d}.png"
            _img(root / rel, seed=70 + 10 * c + i, fmt="JPEG")
            m = _rect(24, 32, 4, 12 + i, 5 + c, 25)
            _mask(root / mrel, m, scale=1 if i == 0 else 255)  # VisA masks hold 0/1 or 0/255
            rows.append(f"{obj},test,anomaly,{rel},{mrel}")
            masks[rel] = m
    (root / "split_csv").mkdir()
    (root / "split_csv/1cls.csv").write_text("\n".join(rows) + "\n")
    return root, masks


def test_visa_layout(visa, tmp_path):
    root, masks = visa
    out = tmp_path / "bench"
    assert main(["visa", "--root", str(root), "--out", str(out), "--quiet"]) == 0
    m = json.loads((out / "benchmark.json").read_text())
    assert m["name"] == "visa" and list(m["splits"]) == ["0"]
    assert list(m["source"]) == ["split_csv/1cls.csv"]
    e = m["splits"]["0"]
    assert e["counts"] == {"train": 6, "test_normal": 2, "test_anomalous": 4}
    assert e["normal_classes"] == ["candle", "pcb1"] and e["anomaly_classes"] == ["candle/anomaly", "pcb1/anomaly"]
    meta = json.loads((out / "meta_0.json").read_text())
    test = {d["img_path"]: d for lst in meta["test"].values() for d in lst}
    assert len(test) == 6 and sorted(meta["test"]) == ["candle", "pcb1"]
    for img, ref in masks.items():
        d = test[img]
        assert d["anomaly"] == 1 and d["cls_name"] == img.split("/")[0] and d["specie_name"] == ""
        assert d["mask_path"] == "mask_ad_0/" + img[: -len(".JPG")] + ".png"
        with Image.open(out / d["mask_path"]) as im:
            np.testing.assert_array_equal(np.asarray(im), ref.astype(np.uint8) * 255)
    b = open_benchmark(out)
    assert all(b.image_file(it).is_file() for it in b.items("0") + b.items("0", "train"))
    assert main(["verify", str(out)]) == 0


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda t: t.replace("object,split,label,image,mask", "object,split,label,image"), "needs the columns"),
        (lambda t: t.replace("pcb1,train,normal", "pcb1,train,anomaly", 1), "anomalous training image"),
        (lambda t: t.replace("pcb1/Data/Images/Normal/0001.JPG", "pcb1/Data/Images/Normal/0009.JPG"),
         "1 listed image or mask file(s) missing (pcb1/Data/Images/Normal/0009.JPG)"),
        (lambda t: t.replace("candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png",
                             "candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,"), "missing"),
        (lambda t: t + "candle,test,normal,../outside.JPG,\n", "leaves the VisA folder"),
    ],
    ids=["no-mask-column", "anomalous-train", "missing-image", "no-mask", "escaping-path"],
)
def test_visa_bad_input(visa, tmp_path, capsys, edit, needle):
    root, _ = visa
    csv = root / "split_csv/1cls.csv"
    csv.write_text(edit(csv.read_text()))
    before = tree_bytes(root)
    assert main(["visa", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert tree_bytes(root) == before
