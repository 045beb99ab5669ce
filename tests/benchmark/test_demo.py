"""The embedded demo: its generated source, the COCO-AD folder built on it, determinism."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from benchmark import demo_source, open_benchmark
from benchmark.build import main

from .conftest import tree_bytes
from .test_coco_ad import expected_split


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "bench"
    t0 = time.perf_counter()
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    return out, time.perf_counter() - t0


def test_demo_is_quick(demo):
    assert demo[1] < 60  # the target is well under 30 s on two cores; this is a generous guard


def test_demo_layout(demo):
    out, _ = demo
    m = json.loads((out / "benchmark.json").read_text())
    assert m["name"] == "coco-ad-demo" and sorted(m["splits"]) == ["0", "1", "2", "3"]
    for k in range(4):
        e = m["splits"][str(k)]
        assert e["meta"] == f"meta_2_{k}.json" and e["mask_dir"] == f"val2017_mask_ad_2_{k}"
        assert len(e["anomaly_classes"]) == 2 and len(e["normal_classes"]) == 6
    # self-contained: relative links into the generated source
    for part in ("train2017", "val2017"):
        assert (out / part).is_symlink() and os.readlink(out / part) == f"source/{part}"
    for p in ("annotations/instances_train2017.json", "annotations/instances_val2017.json"):
        assert (out / "source" / p).is_file()
    assert main(["verify", str(out)]) == 0


def test_demo_source_covers_every_annotation_kind(demo):
    out, _ = demo
    val = json.loads((out / "source/annotations/instances_val2017.json").read_text())
    train = json.loads((out / "source/annotations/instances_train2017.json").read_text())
    ids = [c["id"] for c in val["categories"]]
    assert len(ids) == 8 and ids != list(range(ids[0], ids[0] + 8))  # gaps, as in COCO
    anns = val["annotations"] + train["annotations"]
    segs = [a["segmentation"] for a in anns]
    assert any(isinstance(s, list) and len(s) >= 2 for s in segs)  # several polygon parts
    assert any(isinstance(s, dict) and isinstance(s["counts"], list) for s in segs)  # uncompressed RLE
    assert any(isinstance(s, dict) and isinstance(s["counts"], str) for s in segs)  # compressed RLE
    assert any(a["iscrowd"] for a in anns)
    assert any(a["area"] == 0 for a in val["annotations"])
    for doc in (train, val):
        annotated = {a["image_id"] for a in doc["annotations"]}
        assert any(im["id"] not in annotated for im in doc["images"])
        for im in doc["images"]:
            assert 160 <= im["height"] <= 320 and 160 <= im["width"] <= 320
    assert 150 <= len(train["images"]) <= 300 and 60 <= len(val["images"]) <= 100
    with Image.open(out / "source/val2017" / val["images"][0]["file_name"]) as im:
        assert im.format == "JPEG" and im.size == (val["images"][0]["width"], val["images"][0]["height"])


def test_demo_splits_are_as_constructed_and_learnable(demo):
    out, _ = demo
    b = open_benchmark(out)
    for k in range(4):
        train, test, masks = expected_split(out / "source", k)
        sid = str(k)
        assert [it.img_path for it in b.items(sid, "train")] == train
        assert {it.img_path: it.anomaly for it in b.items(sid)} == test
        anomalous = [it for it in b.items(sid) if it.anomaly]
        assert 100 <= len(train) <= 250 and len(anomalous) >= 15
        n_nonempty = 0
        for it in anomalous:
            with Image.open(b.mask_file(it)) as im:
                arr = np.asarray(im)
            np.testing.assert_array_equal(arr, masks[it.img_path])
            n_nonempty += bool(arr.any())
            # objects are large enough to survive the 256x256 evaluation size
            if arr.any():
                assert b.gt_mask(it).sum() >= 50
        assert n_nonempty >= len(anomalous) - 1  # one val image is anomalous through a zero-area annotation only


def test_demo_categories_look_different(demo):
    """Every category has its own colour: median object colours are far apart."""
    out, _ = demo
    coco = COCO(str(out / "source/annotations/instances_val2017.json"))
    medians = {}
    for cat in coco.dataset["categories"]:
        px = []
        for ann in coco.loadAnns(coco.getAnnIds(catIds=[cat["id"]])):
            if ann["area"] == 0:
                continue
            img = np.asarray(Image.open(out / "source/val2017" / coco.imgs[ann["image_id"]]["file_name"]).convert("RGB"))
            px.append(img[coco.annToMask(ann).astype(bool)])
        medians[cat["name"]] = np.median(np.concatenate(px), axis=0)
    names = sorted(medians)
    dist = min(np.linalg.norm(medians[a] - medians[b]) for i, a in enumerate(names) for b in names[i + 1 :])
    assert dist > 40, medians


def test_demo_rebuild_is_byte_identical_and_relocatable(demo, tmp_path):
    out, _ = demo
    again = tmp_path / "again"
    assert main(["demo", "--out", str(again), "--quiet", "--workers", "1"]) == 0
    assert tree_bytes(again) == tree_bytes(out)
    moved = tmp_path / "moved"
    shutil.copytree(again, moved, symlinks=True)
    shutil.rmtree(again)
    b = open_benchmark(moved)
    assert all(b.image_file(it).is_file() for it in b.items("2") + b.items("2", "train"))
    assert main(["verify", str(moved)]) == 0


def test_demo_refuses_a_folder_holding_another_benchmark(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "benchmark.json").write_text(json.dumps({"name": "coco-ad", "splits": {}, "files": {}}))
    assert main(["demo", "--out", str(out), "--quiet"]) == 2
    assert "coco-ad" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["benchmark.json"]


def test_uncompressed_rle_matches_pycocotools():
    import pycocotools.mask as mu

    from .conftest import rle_counts_list

    rng = np.random.default_rng(3)
    for shape in [(7, 5), (1, 1), (13, 21)]:
        for fill in (0.0, 0.5, 1.0):
            m = rng.uniform(size=shape) < fill
            rle = demo_source.uncompressed_rle(m)
            assert rle == rle_counts_list(m)
            np.testing.assert_array_equal(mu.decode(mu.frPyObjects(rle, *shape)), m.astype(np.uint8))


def test_scenes_are_a_pure_function_of_the_seed():
    a = demo_source.make_scene("val", 5, "x.jpg")
    b = demo_source.make_scene("val", 5, "x.jpg")
    assert a.jpeg == b.jpeg and a.anns == b.anns
    assert demo_source.make_scene("val", 6, "x.jpg").jpeg != a.jpeg


def test_demo_with_ader_masks(demo, tmp_path, capsys):
    """``demo --masks ader``: the same source, lists and labels; ADer's masks; byte-identical on rebuild."""
    from .test_ader_masks import ader_reference, anomaly_annotations

    out, _ = demo
    ader = tmp_path / "ader"
    assert main(["demo", "--out", str(ader), "--masks", "ader", "--quiet"]) == 0
    a, c = open_benchmark(ader), open_benchmark(out)
    assert a.masks == "ader" and c.masks == "pycocotools"
    for p in sorted(out.glob("meta_*.json")) + sorted((out / "source").rglob("*.json")):
        assert (ader / p.relative_to(out)).read_bytes() == p.read_bytes()
    n_diff = n_anomalous = 0
    for k, sid in enumerate(a.split_ids):
        expected = anomaly_annotations(ader / "source", k)
        for it in (it for it in a.items(sid) if it.anomaly):
            info, anns = expected[it.img_path]
            got = np.asarray(Image.open(a.mask_file(it)))
            np.testing.assert_array_equal(got, ader_reference(ader / "source", info, anns, tmp_path / "ref.png"))
            n_diff += bool((got != np.asarray(Image.open(c.mask_file(it)))).any())
            n_anomalous += 1
    assert n_diff >= n_anomalous / 2  # polygon masks differ at their edges (RLE ones are equal)
    # a rebuild in place gives the same bytes and leaves a file of the user's in the source alone
    (ader / "source" / "train2017" / "notes.txt").write_text("mine")
    before = tree_bytes(ader)
    assert main(["demo", "--out", str(ader), "--masks", "ader", "--quiet", "--workers", "1"]) == 0
    assert tree_bytes(ader) == before
    assert main(["verify", str(ader)]) == 0
    assert "masks: ader" in capsys.readouterr().out
