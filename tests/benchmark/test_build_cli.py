"""The CLI's contract: bad input → one line on stderr, exit 2, nothing written; ``verify``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from benchmark.build import main

from .conftest import read_only, tree_bytes

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
        (lambda r: _edit_json(r / "annotations" / "instances_val2017.json",
                              lambda d: d["annotations"][3].update(segmentation=[[1.5, 2, 3, 4]])),
         ["annotation #3", "polygon part 0 has 4 coordinates"]),
    ],
    ids=["no-val-json", "bad-json", "not-an-object", "unknown-category", "unknown-image", "no-segmentation",
         "9-categories", "category-mismatch", "no-train-folder", "two-point-polygon"],
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


@pytest.mark.parametrize("manifest", ["[" * 100_000 + "]" * 100_000, '{"name": "coco-ad", "files": {}, "splits": {"0": 7}}'],
                         ids=["nested-100000-deep", "split-not-an-object"])
def test_a_broken_manifest_in_the_way_is_one_line(coco_source, tmp_path, capsys, manifest):
    out = tmp_path / "out"
    out.mkdir()
    (out / "benchmark.json").write_text(manifest)
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--quiet"]) == 2
    assert_one_line_error(capsys, "benchmark.json", "remove it or choose another --out")
    assert sorted(p.name for p in out.iterdir()) == ["benchmark.json"]


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


# ---------------------------------------------------------------- output folders that cannot be written (issue 11 #9)


@pytest.mark.parametrize("case", ["coco-root-as-out", "out", "parent-of-out", "mask-folder", "demo"])
def test_read_only_output_is_one_line_and_writes_nothing(case, coco_copy, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    args = ["coco-ad", "--coco-root", str(coco_copy), "--out", str(out), "--quiet"]
    locked = out
    if case == "coco-root-as-out":
        args, locked = ["coco-ad", "--coco-root", str(coco_copy), "--quiet"], coco_copy
    elif case == "out":
        out.mkdir()
    elif case == "parent-of-out":
        out, locked = tmp_path / "locked" / "out", tmp_path / "locked"
        locked.mkdir()
        args[4] = str(out)
    elif case == "mask-folder":
        assert main(args) == 0
        locked = out / "val2017_mask_ad_2_1"
        _edit_json(coco_copy / "annotations" / "instances_val2017.json", lambda d: d["annotations"].pop())
    else:
        args = ["demo", "--out", str(out), "--quiet"]
        out.mkdir()
    capsys.readouterr()
    before = tree_bytes(tmp_path)
    with read_only(locked, monkeypatch):
        assert main(args) == 2
    assert_one_line_error(capsys, str(locked), "cannot write here", "--out")
    assert tree_bytes(tmp_path) == before


def test_full_disk_is_one_line_and_leaves_no_partial_file(coco_source, tmp_path, capsys, monkeypatch):
    import errno

    import benchmark.masks as masks
    from contract.files import atomic_open

    calls = {"n": 0}

    def filling_write(path, data):
        calls["n"] += 1
        with atomic_open(path) as f:
            f.write(data[: len(data) // 2])
            if calls["n"] == 6:
                raise OSError(errno.ENOSPC, "No space left on device")
            f.write(data[len(data) // 2 :])

    monkeypatch.setattr(masks, "atomic_write_bytes", filling_write)
    out = tmp_path / "out"
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--workers", "1", "--quiet"]) == 2
    assert_one_line_error(capsys, str(out), "No space left on device", "rerun")
    assert not (out / "benchmark.json").exists()
    written = [p for p in out.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(written) == 5 and all(p.suffix == ".png" and not p.name.startswith(".") for p in written)
    for p in written:
        with Image.open(p) as im:
            im.load()  # whole files only
    monkeypatch.undo()
    assert main(["coco-ad", "--coco-root", str(coco_source), "--out", str(out), "--quiet"]) == 0
    assert main(["verify", str(out)]) == 0


# ---------------------------------------------------------------- verify checks the fields that steer the evaluator (issue 11 #10)


def _rehash_meta(root: Path, meta: str) -> None:
    """Make the manifest agree with an edited meta file again (as an attacker would), so only field checks can object."""
    from contract.files import sha256_file, sha256_of_listing

    from benchmark.manifest import owned_by

    path = root / "benchmark.json"
    m = json.loads(path.read_text())
    m["files"][meta] = sha256_file(root / meta)
    for entry in m["splits"].values():
        entry["sha256"] = sha256_of_listing((r, d) for r, d in m["files"].items() if owned_by(r, entry))
    path.write_text(json.dumps(m))


def _outside_link(root: Path) -> str:
    (root / "pics").symlink_to(root.parent, target_is_directory=True)
    return "pics"


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda m, r: m.update(image_root="../elsewhere"), "image_root"),
        (lambda m, r: m.update(image_root="/etc"), "image_root"),
        (lambda m, r: m.update(image_root=_outside_link(r)), "through a link"),
        (lambda m, r: m.update(protocol="x"), "protocol must be an object"),
        (lambda m, r: m["protocol"].update(eval_size=[60000, 60000]), "eval_size"),
        (lambda m, r: m["protocol"].update(eval_size=[256]), "eval_size"),
        (lambda m, r: m["protocol"].update(mask_threshold="127"), "mask_threshold"),
        (lambda m, r: m["protocol"].update(map_resize="nearest"), "map_resize"),
        (lambda m, r: m["protocol"].update(extra=1), "unknown: 'extra'"),
        (lambda m, r: m.update(masks="opencv"), "masks 'opencv'"),
        (lambda m, r: m["files"].update({"../outside.png": "0" * 64}), "leaves the benchmark folder"),
    ],
    ids=["image-root-up", "image-root-absolute", "image-root-link", "protocol-not-object", "eval-size-huge",
         "eval-size-short", "threshold-text", "map-resize", "protocol-extra-key", "masks-unknown", "listed-outside"],
)
def test_verify_refuses_fields_that_mislead_the_evaluator(small_build, capsys, edit, needle):
    path = small_build / "benchmark.json"
    m = json.loads(path.read_text())
    edit(m, small_build)
    path.write_text(json.dumps(m))
    assert main(["verify", str(small_build)]) == 1
    out = capsys.readouterr().out
    assert needle in out, out


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd"])
def test_verify_refuses_meta_paths_outside_the_folder(small_build, capsys, bad):
    meta = small_build / "meta_2_0.json"
    doc = json.loads(meta.read_text())
    doc["test"]["coco"][0]["img_path"] = bad
    meta.write_text(json.dumps(doc))
    _rehash_meta(small_build, "meta_2_0.json")
    assert main(["verify", str(small_build)]) == 1
    out = capsys.readouterr().out
    assert "meta_2_0.json: 1 path(s) leave the benchmark folder" in out and "changed" not in out


def test_verify_refuses_an_unlisted_mask_path(small_build, capsys):
    meta = small_build / "meta_2_1.json"
    doc = json.loads(meta.read_text())
    item = next(it for it in doc["test"]["coco"] if not it["anomaly"])
    item.update(anomaly=1, mask_path="val2017_mask_ad_2_1/unlisted.png")
    meta.write_text(json.dumps(doc))
    _rehash_meta(small_build, "meta_2_1.json")
    assert main(["verify", str(small_build)]) == 1
    assert "1 mask_path(s) not listed" in capsys.readouterr().out


def test_verify_accepts_the_coco_root_links_and_reports_the_mask_mode(small_build, coco_source, capsys):
    # --out elsewhere than the COCO root: the image folders are links to it, which is the documented case
    assert (small_build / "val2017").is_symlink()
    assert main(["verify", str(small_build)]) == 0
    out = capsys.readouterr().out
    assert "coco-ad v1.0, splits 0, 1, 2, 3, masks: pycocotools" in out


@pytest.mark.parametrize("manifest", ['{"files": {}, "splits": [1, 2]}', "[" * 100_000 + "]" * 100_000],
                         ids=["splits-a-list", "nested-100000-deep"])
def test_verify_hostile_manifest_is_one_line(tmp_path, capsys, manifest):
    (tmp_path / "benchmark.json").write_text(manifest)
    assert main(["verify", str(tmp_path)]) == 2
    assert_one_line_error(capsys, "benchmark.json")


# ---------------------------------------------------------------- --help (issue 13)


def test_help_texts_are_plain_and_every_argument_has_help(capsys):
    import argparse

    from benchmark.build import make_parser

    ap = make_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    parsers = {"": ap, **sub.choices}
    for name, p in parsers.items():
        with pytest.raises(SystemExit):
            p.parse_args(["--help"])
        text = capsys.readouterr().out
        assert "``" not in text and ":func:" not in text and ":mod:" not in text, (name, text)
        for action in p._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, (name, action.dest)
    for name in ("verify", "gt"):
        assert re.search(r"\n  DIR +the benchmark folder", parsers[name].format_help()), name
