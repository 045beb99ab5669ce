"""COCO-AD construction on a small source: membership, labels, masks, manifest, determinism.

Expected values are computed here from the annotation files, with
pycocotools' own ``COCO.annToMask`` for the masks, never through the
builder's functions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

import benchmark
from benchmark import coco_ad, open_benchmark
from benchmark.build import main
from contract.files import sha256_bytes, sha256_file, sha256_of_listing
from benchmark.protocol import DEFAULT_PROTOCOL

from .conftest import tree_bytes

SPLITS = ["0", "1", "2", "3"]


def expected_split(root: Path, k: int):
    """(train img_paths, {test img_path: anomaly}, {test img_path: uint8 mask}) of split k."""
    out = {}
    for part in ("train", "val"):
        coco = COCO(str(root / "annotations" / f"instances_{part}2017.json"))
        ids = sorted(c["id"] for c in coco.dataset["categories"])
        label = {cid: i for i, cid in enumerate(ids)}
        anomalous = {2 * k, 2 * k + 1}
        per_img: dict[int, list] = {}
        for ann in coco.dataset["annotations"]:
            per_img.setdefault(ann["image_id"], []).append(ann)
        out[part] = (coco, label, anomalous, per_img)
    coco, label, anomalous, per_img = out["train"]
    train = sorted(
        "train2017/" + coco.imgs[i]["file_name"]
        for i, anns in per_img.items()
        if not any(label[a["category_id"]] in anomalous for a in anns)
    )
    coco, label, anomalous, per_img = out["val"]
    test, masks = {}, {}
    for i, anns in per_img.items():
        path = "val2017/" + coco.imgs[i]["file_name"]
        anom = [a for a in anns if label[a["category_id"]] in anomalous]
        test[path] = int(bool(anom))
        if anom:
            m = np.zeros((coco.imgs[i]["height"], coco.imgs[i]["width"]), bool)
            for a in anom:
                m |= coco.annToMask(a).astype(bool)
            masks[path] = m.astype(np.uint8) * 255
    return train, test, masks


@pytest.fixture(scope="module")
def built(coco_source, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "bench"
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    return out


def test_split_membership_labels_and_masks(coco_source, built):
    meta_names = sorted(p.name for p in built.glob("meta_*.json"))
    assert meta_names == [f"meta_2_{k}.json" for k in range(4)]
    for k in range(4):
        train, test, masks = expected_split(coco_source, k)
        meta = json.loads((built / f"meta_2_{k}.json").read_text())
        assert set(meta) == {"train", "test"} and set(meta["train"]) == {"coco"} and set(meta["test"]) == {"coco"}
        got_train = meta["train"]["coco"]
        assert [d["img_path"] for d in got_train] == train
        assert all(d == {"img_path": d["img_path"], "mask_path": "", "cls_name": "coco", "specie_name": "", "anomaly": 0}
                   for d in got_train)
        got_test = meta["test"]["coco"]
        assert [d["img_path"] for d in got_test] == sorted(test)
        for d in got_test:
            assert d["anomaly"] == test[d["img_path"]]
            assert d["cls_name"] == "coco" and d["specie_name"] == ""
            if d["anomaly"]:
                stem = Path(d["img_path"]).stem
                assert d["mask_path"] == f"val2017_mask_ad_2_{k}/{stem}.png"
                with Image.open(built / d["mask_path"]) as im:
                    assert im.mode == "L"
                    arr = np.asarray(im)
                np.testing.assert_array_equal(arr, masks[d["img_path"]])
            else:
                assert d["mask_path"] == ""
        # exactly the anomalous images have a mask file
        listed = {d["mask_path"] for d in got_test if d["anomaly"]}
        on_disk = {p.relative_to(built).as_posix() for p in (built / f"val2017_mask_ad_2_{k}").iterdir()}
        assert listed == on_disk


def test_zero_area_only_anomaly_is_anomalous_with_empty_mask(coco_source, built):
    # Val scene 2 has label 1 (polygon) and a zero-area annotation of label 6: split 3 holds 6, 7 out.
    _, test, masks = expected_split(coco_source, 3)
    meta = json.loads((built / "meta_2_3.json").read_text())
    empty = [d for d in meta["test"]["coco"] if d["anomaly"] and not np.asarray(Image.open(built / d["mask_path"])).any()]
    assert len(empty) == 1
    assert not masks[empty[0]["img_path"]].any()


def test_manifest_keys_counts_and_checksums(coco_source, built):
    m = json.loads((built / "benchmark.json").read_bytes())
    assert set(m) == {"name", "version", "image_root", "protocol", "source", "splits", "files", "masks", "builder"}
    assert m["name"] == "coco-ad" and m["image_root"] == "." and m["protocol"] == DEFAULT_PROTOCOL
    assert m["masks"] == "pycocotools" and "opencv" not in m["builder"]
    assert m["builder"]["version"] == benchmark.__version__
    assert m["source"] == {
        f"instances_{p}2017.json": sha256_file(coco_source / "annotations" / f"instances_{p}2017.json")
        for p in ("train", "val")
    }
    assert sorted(m["splits"]) == SPLITS
    names = [f"thing {cid}" for cid in (1, 3, 4, 7, 9, 10, 15, 20)]
    for k in range(4):
        train, test, _ = expected_split(coco_source, k)
        e = m["splits"][str(k)]
        assert set(e) == {"meta", "mask_dir", "normal_classes", "anomaly_classes", "counts", "sha256", "eval_gt"}
        assert e["eval_gt"] == f"meta_2_{k}_gt256x256.npy"
        assert e["anomaly_classes"] == names[2 * k : 2 * k + 2]
        assert e["normal_classes"] == [n for n in names if n not in e["anomaly_classes"]]
        assert e["counts"] == {"train": len(train), "test_normal": sum(1 for v in test.values() if not v),
                               "test_anomalous": sum(test.values())}
        own = [p for p in m["files"] if p in (e["meta"], e["eval_gt"]) or p.startswith(e["mask_dir"] + "/")]
        assert e["sha256"] == sha256_of_listing((p, m["files"][p]) for p in own)
    listed = set(m["files"])
    on_disk = {p.relative_to(built).as_posix() for p in built.glob("meta_*.json")} | {
        p.relative_to(built).as_posix() for p in built.glob("meta_*_gt256x256.npy")} | {
        p.relative_to(built).as_posix() for p in built.glob("val2017_mask_ad_2_*/*.png")}
    assert listed == on_disk
    assert all(sha256_file(built / p) == d for p, d in m["files"].items())
    # canonical JSON: sorted keys, trailing newline
    raw = (built / "benchmark.json").read_bytes()
    assert raw == (json.dumps(m, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def test_reader_opens_the_folder(built):
    b = open_benchmark(built)
    assert b.name == "coco-ad" and b.split_ids == SPLITS and b.eval_size == (256, 256)
    assert b.sha256 == sha256_bytes((built / "benchmark.json").read_bytes())
    for sid in SPLITS:
        assert b.classes(sid) == ["coco"]
        for it in b.items(sid):
            assert b.image_file(it).is_file()  # through the train2017/val2017 links
            gt = b.gt_mask(it)
            assert gt.shape == (256, 256)
            if not it.anomaly:
                assert not gt.any()
        assert all(b.image_file(it).is_file() for it in b.items(sid, "train"))


def test_the_evaluation_size_ground_truth_is_the_masks_resized(built):
    """The build's evaluation-size file holds, bit for bit, each mask resized by Pillow here and thresholded."""
    b = open_benchmark(built)
    for sid in SPLITS:
        gt = b.eval_gt(sid)
        masked = [it for it in b.items(sid) if it.mask_path]
        assert len(gt.rows) == len(masked) and gt.row(0).shape == (256, 32)
        for it in b.items(sid):
            want = np.zeros((256, 256), bool)
            if it.mask_path:
                with Image.open(built / it.mask_path) as im:
                    want = np.asarray(im.convert("L").resize((256, 256), Image.BILINEAR)) > 127
            np.testing.assert_array_equal(gt.mask(it.img_path), want)


def test_links_point_at_the_source(coco_source, built):
    for part in ("train2017", "val2017"):
        link = built / part
        assert link.is_symlink() and link.resolve() == (coco_source / part).resolve()


def test_rebuild_is_byte_identical(coco_source, built, tmp_path):
    out = tmp_path / "again"
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert tree_bytes(out) == tree_bytes(built)
    before = tree_bytes(out)
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--quiet"]) == 0
    assert tree_bytes(out) == before


def test_default_out_is_the_coco_root(coco_copy):
    assert main(["coco-ad", "--coco-root", str(coco_copy), "--splits", "2", "--quiet"]) == 0
    assert (coco_copy / "benchmark.json").is_file() and (coco_copy / "meta_2_2.json").is_file()
    assert not (coco_copy / "train2017").is_symlink()  # no links into itself
    assert open_benchmark(coco_copy).split_ids == ["2"]


def test_splits_added_incrementally_equal_one_build(coco_source, built, tmp_path):
    out = tmp_path / "inc"
    for s in ("2", "0", "3", "1"):
        assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--splits", s, "--quiet"]) == 0
        if s == "2":
            assert sorted(json.loads((out / "benchmark.json").read_text())["splits"]) == ["2"]
        if s == "0":
            assert sorted(json.loads((out / "benchmark.json").read_text())["splits"]) == ["0", "2"]
    assert tree_bytes(out) == tree_bytes(built)
    # rebuilding one split keeps the others
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--splits", "1", "--quiet"]) == 0
    assert tree_bytes(out) == tree_bytes(built)


def test_interrupted_build_rerun_gives_the_same_bytes(coco_source, built, tmp_path, monkeypatch):
    out = tmp_path / "interrupted"
    import benchmark.masks as masks

    real = masks.write_mask
    calls = {"n": 0}

    def dying_write(root, rel, m):
        calls["n"] += 1
        if calls["n"] == 5:
            # leave what a kill in the middle of a write leaves, then die
            (Path(root) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(root) / rel).with_name(f".{Path(rel).name}.abc.tmp").write_bytes(b"partial")
            raise KeyboardInterrupt
        return real(root, rel, m)

    monkeypatch.setattr(masks, "write_mask", dying_write)
    rc = main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--workers", "1", "--quiet"])
    assert rc == 130
    assert not (out / "benchmark.json").exists()
    assert list(out.rglob(".*.tmp"))
    monkeypatch.setattr(masks, "write_mask", real)
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    assert tree_bytes(out) == tree_bytes(built)


def test_rebuild_removes_only_what_it_wrote(coco_source, coco_copy, built, tmp_path):
    """Issue 11 #12: stale files of the previous build go, by exact names; nobody else's files do."""
    # A changed source: val scene 5's only annotation (label 4, split 2) becomes label 2 (split 1).
    path = coco_copy / "annotations" / "instances_val2017.json"
    doc = json.loads(path.read_text())
    scene5 = sorted({a["image_id"] for a in doc["annotations"]})[5]
    for a in doc["annotations"]:
        if a["image_id"] == scene5:
            a["category_id"] = 4  # label 2
    path.write_text(json.dumps(doc))
    out = tmp_path / "out"
    assert main(["coco-ad", "--coco-root", str(coco_copy), "--out", str(out), "--quiet"]) == 0
    stem = f"{scene5:012d}"
    assert (out / f"val2017_mask_ad_2_1/{stem}.png").is_file()
    assert not (out / f"val2017_mask_ad_2_2/{stem}.png").exists()
    # Files that are not the builder's, some with names like its temporary files.
    foreign = {
        ".cache.tmp": b"user", ".meta_2_0.json.tmp": b"user", "notes.txt": b"user",
        "val2017_mask_ad_2_1/README.txt": b"user", "val2017_mask_ad_2_1/000000777777.png": b"not ours",
        "val2017_mask_ad_2_1/.000000777777.png.abcd1234.tmp": b"not ours", "val2017_mask_ad_2_3/sub/keep.txt": b"user",
    }
    for rel, data in foreign.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    # Leftovers of the builder's own interrupted writes.
    ours = [".benchmark.json.x1y2z3w4.tmp", f"val2017_mask_ad_2_1/.{stem}.png.q9w8e7r6.tmp", ".meta_2_3.json.a_b_c_d_.tmp"]
    for rel in ours:
        (out / rel).write_bytes(b"partial")
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--quiet"]) == 0
    got = tree_bytes(out)
    for rel, data in foreign.items():
        assert got.pop(rel) == data, rel
    assert got == tree_bytes(built)  # the listed stale mask and the leftovers are gone


def test_published_counts_check(coco_source, tmp_path, monkeypatch, capsys):
    counts = {}
    n_img = {}
    for p in ("train", "val"):
        n_img[p] = len(json.loads((coco_source / "annotations" / f"instances_{p}2017.json").read_text())["images"])
    for k in range(4):
        train, test, _ = expected_split(coco_source, k)
        counts[str(k)] = {"train": len(train), "test_normal": sum(1 for v in test.values() if not v),
                          "test_anomalous": sum(test.values())}
    monkeypatch.setattr(coco_ad, "COCO2017_IMAGES", n_img)
    monkeypatch.setattr(coco_ad, "COCO2017_CATEGORIES", 8)
    monkeypatch.setattr(coco_ad, "PUBLISHED_COUNTS", counts)
    ok = tmp_path / "ok"
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(ok), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert printed.count(" ok") == 4 and "MISMATCH" not in printed

    bad = dict(counts, **{"1": dict(counts["1"], test_anomalous=counts["1"]["test_anomalous"] + 1)})
    monkeypatch.setattr(coco_ad, "PUBLISHED_COUNTS", bad)
    out = tmp_path / "bad"
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--quiet"]) == 2
    cap = capsys.readouterr()
    assert "MISMATCH" in cap.out and cap.out.count("MISMATCH") == 1
    assert len(cap.err.strip().splitlines()) == 1 and "published" in cap.err and "1" in cap.err
    assert not out.exists()


def test_other_sources_print_their_own_counts(coco_source, tmp_path, capsys):
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(tmp_path / "o"), "--splits", "0", "--quiet"]) == 0
    printed = capsys.readouterr().out
    train, test, _ = expected_split(coco_source, 0)
    line = [ln for ln in printed.splitlines() if ln.strip().startswith("0 ")][0]
    assert [int(v) for v in line.split()] == [0, len(train), sum(1 for v in test.values() if not v), sum(test.values())]
    assert "published" not in printed


def test_quiet_silences_the_progress_bar(coco_source, tmp_path, capfd):
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(tmp_path / "q"), "--splits", "0", "--quiet"]) == 0
    assert "masks" not in capfd.readouterr().err
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(tmp_path / "v"), "--splits", "0"]) == 0
    assert "masks" in capfd.readouterr().err


def test_pool_and_inline_rendering_agree(coco_source, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(a), "--workers", "1", "--quiet"]) == 0
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(b), "--workers", "3", "--quiet"]) == 0
    assert tree_bytes(a) == tree_bytes(b)


def test_split_ids_may_be_given_with_commas(coco_source, tmp_path):
    out = tmp_path / "c"
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--splits", "3,1", "--quiet"]) == 0
    assert open_benchmark(out).split_ids == ["1", "3"]
