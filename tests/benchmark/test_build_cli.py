"""The CLI's contract: bad input → one line on stderr, exit 2, nothing written; ``verify``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.build import main

from .conftest import tree_bytes

REPO = Path(__file__).resolve().parents[2]


def run_cli(args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "benchmark.build", *args], cwd=cwd, capture_output=True, text=True)


def assert_one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)
    return err


def _annotated_val_files(root: Path) -> list[str]:
    doc = json.loads((root / "annotations" / "instances_val2017.json").read_text())
    ids = {a["image_id"] for a in doc["annotations"]}
    return sorted(im["file_name"] for im in doc["images"] if im["id"] in ids)


def _edit_json(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_missing_root(tmp_path, capsys):
    assert main(["coco-ad", "--coco-root", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert_one_line_error(capsys, "nope", "--coco-root")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "damage, needles",
    [
        (lambda r: (r / "annotations" / "instances_val2017.json").unlink(), ["instances_val2017.json", "missing"]),
        (lambda r: (r / "annotations" / "instances_train2017.json").write_text('{"images": [1, 2'),
         ["instances_train2017.json", "malformed JSON"]),
        (lambda r: (r / "annotations" / "instances_val2017.json").write_text("[]"), ["instances_val2017.json"]),
        (lambda r: _edit_json(r / "annotations" / "instances_val2017.json",
                              lambda d: d["annotations"][0].update(category_id=12345)), ["unknown category_id 12345"]),
        (lambda r: _edit_json(r / "annotations" / "instances_val2017.json",
                              lambda d: d["annotations"][1].update(image_id=424242)), ["unlisted image_id 424242"]),
        (lambda r: _edit_json(r / "annotations" / "instances_val2017.json",
                              lambda d: d["annotations"][2].pop("segmentation")), ["annotation #2"]),
        (lambda r: [_edit_json(r / "annotations" / f"instances_{p}2017.json",
                               lambda d: d["categories"].append({"id": 90, "name": "extra"})) for p in ("train", "val")],
         ["9 categories", "multiple of 4"]),
        (lambda r: _edit_json(r / "annotations" / "instances_train2017.json",
                              lambda d: d["categories"].pop()), ["categories differ"]),
        (lambda r: __import__("shutil").rmtree(r / "train2017"), ["train2017", "image folder missing"]),
    ],
    ids=["no-val-json", "bad-json", "not-an-object", "unknown-category", "unknown-image", "no-segmentation",
         "9-categories", "category-mismatch", "no-train-folder"],
)
def test_bad_source_exits_2_and_writes_nothing(coco_copy, tmp_path, capsys, damage, needles):
    damage(coco_copy)
    before = tree_bytes(coco_copy)
    out = tmp_path / "out"
    assert main(["coco-ad", "--coco-root", str(coco_copy), "--out", str(out), "--quiet"]) == 2
    assert_one_line_error(capsys, *needles)
    assert not out.exists()
    # default --out is the source itself: it must stay untouched too
    assert main(["coco-ad", "--coco-root", str(coco_copy), "--quiet"]) == 2
    capsys.readouterr()
    assert tree_bytes(coco_copy) == before


def test_missing_images_are_counted_and_named(coco_copy, tmp_path, capsys):
    names = _annotated_val_files(coco_copy)[:4]
    for n in names:
        (coco_copy / "val2017" / n).unlink()
    assert main(["coco-ad", "--coco-root", str(coco_copy), "--out", str(tmp_path / "out")]) == 2
    err = assert_one_line_error(capsys, "4 annotated image file(s) missing", *names[:3])
    assert names[3] not in err
    assert not (tmp_path / "out").exists()


def test_unknown_split_id(coco_source, tmp_path, capsys):
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(tmp_path / "out"), "--splits", "1", "7"]) == 2
    assert_one_line_error(capsys, "'7'", "0, 1, 2, 3")
    assert not (tmp_path / "out").exists()


def test_out_with_a_real_image_folder_in_the_way(coco_source, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "val2017").mkdir(parents=True)
    before = tree_bytes(out)
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out)]) == 2
    assert_one_line_error(capsys, "val2017", "not a link")
    assert tree_bytes(out) == before


def test_another_benchmark_is_never_overwritten(coco_source, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "benchmark.json").write_text(json.dumps({"name": "mvtec-ad", "splits": {"0": {}}, "files": {}}))
    before = tree_bytes(out)
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out)]) == 2
    assert_one_line_error(capsys, "mvtec-ad")
    assert tree_bytes(out) == before


def test_splits_from_another_source_cannot_be_mixed(coco_source, coco_copy, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--splits", "0", "--quiet"]) == 0
    _edit_json(coco_copy / "annotations" / "instances_val2017.json", lambda d: d["annotations"].pop())
    before = tree_bytes(out)
    assert main(["coco-ad", "--coco-root", str(coco_copy), "--out", str(out), "--splits", "1", "--quiet"]) == 2
    assert_one_line_error(capsys, "split(s) 0", "other source")
    assert tree_bytes(out) == before
    # rebuilding every split it holds replaces it
    assert main(["coco-ad", "--coco-root", str(coco_copy), "--out", str(out), "--splits", "0", "--quiet"]) == 0


@pytest.fixture
def small_build(coco_source, tmp_path):
    out = tmp_path / "bench"
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--quiet"]) == 0
    return out


def test_verify_clean(small_build, capsys):
    assert main(["verify", str(small_build)]) == 0
    assert "all 24 listed files match" in capsys.readouterr().out  # 4 splits: meta, masks, evaluation-size GT


def test_verify_names_changed_and_missing_files(small_build, capsys):
    listed = json.loads((small_build / "benchmark.json").read_text())["files"]
    mask = sorted(p for p in listed if p.startswith("val2017_mask_ad_2_2/"))[0]
    data = bytearray((small_build / mask).read_bytes())
    data[len(data) // 2] ^= 0x01
    (small_build / mask).write_bytes(bytes(data))
    (small_build / "meta_2_1.json").unlink()
    assert main(["verify", str(small_build)]) == 1
    cap = capsys.readouterr()
    lines = cap.out.strip().splitlines()
    assert f"{small_build}: changed: {mask}" in lines
    assert f"{small_build}: missing: meta_2_1.json" in lines
    assert len(lines) == 2
    assert "2 problem(s)" in cap.err


def test_verify_catches_an_edited_manifest(small_build, capsys):
    path = small_build / "benchmark.json"
    m = json.loads(path.read_text())
    m["splits"]["3"]["sha256"] = "0" * 64
    path.write_text(json.dumps(m))
    assert main(["verify", str(small_build)]) == 1
    assert "split 3" in capsys.readouterr().out


def test_verify_without_manifest(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    assert_one_line_error(capsys, "benchmark.json", "missing")


def test_real_process_exit_codes(small_build, tmp_path):
    r = run_cli(["verify", str(small_build)])
    assert r.returncode == 0, r.stderr
    (small_build / "meta_2_0.json").write_text("{}")
    r = run_cli(["verify", str(small_build)])
    assert r.returncode == 1 and "changed: meta_2_0.json" in r.stdout
    r = run_cli(["coco-ad", "--coco-root", str(tmp_path / "absent")])
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
