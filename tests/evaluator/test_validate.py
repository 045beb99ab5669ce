"""Validation of submission folders: each way a user can break one is one clear line, exit 1,
no traceback, nothing written or changed (for validate and for score)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import evaluator
from evaluator.cli import main
from evaluator.maps import MAX_SIDE
from evaluator.submission import npy_bytes
from evaluator.validate import MAX_PROBLEMS, validate_report

from .conftest import tree_snapshot

MAP = "0/maps/val/a_0004.npy"  # an anomalous test image of class a, split 0
IMG = "val/a_0004.jpg"


def _set_json(sub, **changes):
    doc = json.loads((sub / "submission.json").read_text())
    for key, value in changes.items():
        target = doc
        *path, last = key.split("__")
        for k in path:
            target = target[k]
        target[last] = value
    (sub / "submission.json").write_text(json.dumps(doc))


def _replace_map(sub, arr=None, raw=None, suffix=".npy", rel=MAP):
    (sub / rel).unlink()
    new = sub / Path(rel).with_suffix(suffix)
    if raw is not None:
        new.write_bytes(raw)
    elif suffix == ".npy":
        np.save(new, arr, allow_pickle=True)
    else:
        Image.fromarray(arr).save(new)
    return str(Path(rel).with_suffix(suffix))


def _npy_with_header(shape, descr="<f4", body=b"\0" * 64):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + body


def _png_bytes(arr, fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _scores(sub, text, split="0"):
    (sub / split / "scores.csv").write_text(text)
    return f"{split}/scores.csv"


def _valid_scores_rows(bench, split="0"):
    return [f"{it.img_path},{i / 10}" for i, it in enumerate(bench.items(split))]


def _link(sub, target, rel=MAP):
    (sub / rel).unlink()
    os.symlink(target, sub / rel)
    return rel


def _link_dir(sub, tmp_path):
    real = tmp_path / "elsewhere"
    os.replace(sub / "0" / "maps" / "val", real)
    os.symlink(real, sub / "0" / "maps" / "val")
    return "0/maps/val"


f32 = np.float32
CASES = {
    # (mutation(sub, bench, tmp_path) -> file named in the line, expected words)
    "malformed-json": (lambda s, b, t: (s / "submission.json").write_text("{not json") and "submission.json", "malformed JSON"),
    "not-utf8": (lambda s, b, t: (s / "submission.json").write_bytes(b"\xff\xfe{}") and "submission.json", "UTF-8"),
    "schema-version": (lambda s, b, t: _set_json(s, schema_version=2) or "submission.json", "schema violation"),
    "schema-no-method-name": (lambda s, b, t: _set_json(s, method={"paper": "x"}) or "submission.json", "'name' is a required"),
    "schema-splits-not-strings": (lambda s, b, t: _set_json(s, splits=[0]) or "submission.json", "splits/0"),
    "split-leaves-folder": (lambda s, b, t: _set_json(s, splits=["../0"]) or "submission.json", "schema violation"),
    "unknown-benchmark": (lambda s, b, t: _set_json(s, benchmark__name="other-ad") or "submission.json", "'other-ad'"),
    "version-mismatch": (lambda s, b, t: _set_json(s, benchmark__version="2") or "submission.json", "version '2'"),
    "split-not-in-benchmark": (lambda s, b, t: _set_json(s, splits=["0", "1", "7"]) or "submission.json", "split '7'"),
    "missing-manifest": (lambda s, b, t: (s / "submission.json").unlink() or "submission.json", "missing"),
    "missing-map": (lambda s, b, t: (s / MAP).unlink() or MAP, "missing map"),
    "extra-file-in-maps": (lambda s, b, t: (s / "0/maps/notes.txt").write_text("hi") and "0/maps/notes.txt", "extra file"),
    "hidden-extra-file": (lambda s, b, t: (s / "0/maps/val/.DS_Store").write_bytes(b"x") and "0/maps/val/.DS_Store", "extra file"),
    "unknown-image": (lambda s, b, t: np.save(s / "0/maps/val/zzz.npy", np.zeros((32, 32), f32)) or "0/maps/val/zzz.npy",
                      "unknown image"),
    "map-for-other-split-folder": (lambda s, b, t: _set_json(s, splits=["0"]) or "1/maps", "does not list"),
    "two-maps-one-image": (lambda s, b, t: (s / MAP).with_suffix(".png").write_bytes(_png_bytes(np.zeros((32, 32), np.uint16)))
                           and "0/maps/val/a_0004.png", "second map"),
    "ndim-3": (lambda s, b, t: _replace_map(s, np.zeros((32, 32, 1), f32)), "2-D"),
    "ndim-1": (lambda s, b, t: _replace_map(s, np.zeros(32, f32)), "2-D"),
    "float64": (lambda s, b, t: _replace_map(s, np.zeros((32, 32))), "float64"),
    "int32": (lambda s, b, t: _replace_map(s, np.zeros((32, 32), np.int32)), "int32"),
    "bool": (lambda s, b, t: _replace_map(s, np.zeros((32, 32), bool)), "bool"),
    "nan": (lambda s, b, t: _replace_map(s, np.full((32, 32), np.nan, f32)), "NaN"),
    "inf": (lambda s, b, t: _replace_map(s, np.full((32, 32), np.inf, np.float16)), "infinite"),
    "minus-inf": (lambda s, b, t: _replace_map(s, np.where(np.eye(32) > 0, -np.inf, 0).astype(f32)), "infinite"),
    "zero-byte-npy": (lambda s, b, t: _replace_map(s, raw=b""), "zero-byte"),
    "truncated-npy": (lambda s, b, t: _replace_map(s, raw=npy_bytes(np.zeros((32, 32), f32))[:-10]), "truncated"),
    "trailing-bytes-npy": (lambda s, b, t: _replace_map(s, raw=npy_bytes(np.zeros((32, 32), f32)) + b"x"), "trailing"),
    "garbage-npy": (lambda s, b, t: _replace_map(s, raw=b"PK\x03\x04 not an array"), "not a .npy"),
    "object-npy": (lambda s, b, t: _replace_map(s, np.array([[None, 1]], dtype=object)), "object"),
    "record-npy": (lambda s, b, t: _replace_map(s, np.zeros((4, 4), dtype=[("x", f32)])), "refused"),
    "absurd-shape": (lambda s, b, t: _replace_map(s, raw=_npy_with_header((100000, 100000))), f"{MAX_SIDE}x{MAX_SIDE}"),
    "shape-beyond-file": (lambda s, b, t: _replace_map(s, raw=_npy_with_header((200, 200))), "truncated"),
    # 64 times the 32x32 evaluation size is 65,536 pixels: a 300x300 map is refused from its header.
    "more-pixels-than-64x-eval-size": (lambda s, b, t: _replace_map(s, raw=_npy_with_header((300, 300))), "64 times"),
    "empty-shape": (lambda s, b, t: _replace_map(s, np.zeros((0, 32), f32)), "empty map"),
    "rgb-png": (lambda s, b, t: _replace_map(s, np.zeros((32, 32, 3), np.uint8), suffix=".png"), "mode RGB"),
    "8bit-png": (lambda s, b, t: _replace_map(s, np.zeros((32, 32), np.uint8), suffix=".png"), "mode L"),
    "truncated-png": (lambda s, b, t: _replace_map(s, raw=_png_bytes(np.arange(1024, dtype=np.uint16).reshape(32, 32))[:-30],
                                                   suffix=".png"), "truncated"),
    "zero-byte-png": (lambda s, b, t: _replace_map(s, raw=b"", suffix=".png"), "zero-byte"),
    "int-tiff": (lambda s, b, t: _replace_map(s, np.zeros((32, 32), np.uint16), suffix=".tiff"), "TIFF mode"),
    "truncated-tiff": (lambda s, b, t: _replace_map(s, raw=_png_bytes(np.random.default_rng(0).random((32, 32), f32), "TIFF")[:2000],
                                                    suffix=".tiff"), "TIFF"),
    "nan-tiff": (lambda s, b, t: _replace_map(s, np.full((32, 32), np.nan, f32), suffix=".tiff"), "NaN"),
    "symlink-inside": (lambda s, b, t: _link(s, s / "0/maps/val/a_0000.npy"), "symbolic link"),
    "symlink-outside": (lambda s, b, t: _link(s, "/etc/hostname"), "symbolic link"),
    "symlink-relative-dotdot": (lambda s, b, t: _link(s, "../../../../noise.npy"), "symbolic link"),
    "symlink-folder": (lambda s, b, t: _link_dir(s, t), "symbolic link"),
    "scores-header": (lambda s, b, t: _scores(s, "path,value\n" + "\n".join(_valid_scores_rows(b)) + "\n"), "header"),
    "scores-non-numeric": (lambda s, b, t: _scores(s, "img_path,score\n" + "\n".join(_valid_scores_rows(b)[1:])
                                                   + f"\n{b.items('0')[0].img_path},high\n"), "not a number"),
    "scores-nan": (lambda s, b, t: _scores(s, "img_path,score\n" + "\n".join(_valid_scores_rows(b)[1:])
                                           + f"\n{b.items('0')[0].img_path},nan\n"), "not finite"),
    "scores-duplicate": (lambda s, b, t: _scores(s, "img_path,score\n" + "\n".join(_valid_scores_rows(b) + _valid_scores_rows(b)[:1])
                                                 + "\n"), "duplicate"),
    "scores-unknown-image": (lambda s, b, t: _scores(s, "img_path,score\n" + "\n".join(_valid_scores_rows(b))
                                                     + "\nval/zzz.jpg,1\n"), "not a test image"),
    "scores-missing-image": (lambda s, b, t: _scores(s, "img_path,score\n" + "\n".join(_valid_scores_rows(b)[1:]) + "\n"),
                             "no score"),
    "scores-three-fields": (lambda s, b, t: _scores(s, "img_path,score\n" + "\n".join(_valid_scores_rows(b)[1:])
                                                    + f"\n{b.items('0')[0].img_path},1,2\n"), "2 fields"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_submission_is_one_line_and_changes_nothing(case, valid_sub, bench, bench_dir, tmp_path, capsys):
    mutate, words = CASES[case]
    rel = mutate(valid_sub, bench, tmp_path)
    before = tree_snapshot(tmp_path)

    rc = main(["validate", str(valid_sub), "--benchmark", str(bench_dir), "--quiet"])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert rc == 1 and out == ""
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{valid_sub / rel}: "), lines[0]
    assert words in lines[0]
    assert "Traceback" not in err

    rc = main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--quiet", "--panels", "2"])
    out, err = capsys.readouterr()
    assert rc == 1 and out == ""
    assert err.splitlines() == lines  # score validates with the very same findings
    assert tree_snapshot(tmp_path) == before  # no result, no panels, submission untouched
    assert not (valid_sub.parent / "results").exists()


def test_valid_submission_passes(valid_sub, bench_dir, capsys):
    assert evaluator.validate(valid_sub, bench_dir) == []
    assert main(["validate", str(valid_sub), "--benchmark", str(bench_dir), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "valid" in out and err == ""


def test_other_map_formats_are_valid(valid_sub, bench, bench_dir):
    items = bench.items("0")
    rng = np.random.default_rng(3)
    _replace_map(valid_sub, (rng.random((32, 32)) * 65535).astype(np.uint16), suffix=".png",
                 rel=f"0/maps/{Path(items[0].img_path).with_suffix('.npy')}")
    _replace_map(valid_sub, rng.random((20, 24), dtype=f32), suffix=".tiff",
                 rel=f"0/maps/{Path(items[1].img_path).with_suffix('.npy')}")
    _replace_map(valid_sub, np.asfortranarray(rng.random((32, 32)).astype(">f4")),
                 rel=f"0/maps/{Path(items[2].img_path).with_suffix('.npy')}")
    _scores(valid_sub, "img_path,score\r\n" + "\r\n".join(_valid_scores_rows(bench)) + "\r\n")
    (valid_sub / "README.md").write_text("extra files outside maps/ are allowed")
    assert evaluator.validate(valid_sub, bench_dir) == []


def test_problems_are_capped_with_a_count(valid_sub, bench, bench_dir, capsys):
    # 24 missing maps (cheap listing checks): every one counted, 20 shown.
    for sid in ("0", "1"):
        for it in bench.items(sid):
            (valid_sub / sid / "maps" / Path(it.img_path).with_suffix(".npy")).unlink()
    problems, stopped = validate_report(valid_sub, bench_dir)
    assert len(problems) == 24 and not stopped
    assert main(["validate", str(valid_sub), "--benchmark", str(bench_dir), "--quiet"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == MAX_PROBLEMS + 1 and lines[-1].startswith("... and 4 more problem(s)")


def test_map_reading_stops_at_the_cap(tmp_path, make_benchmark, capsys):
    from benchmark import open_benchmark

    from .conftest import write_submission

    root = make_benchmark(n_test_normal=15, n_test_anomalous=15, n_train=1)
    bench = open_benchmark(root)
    # SubmissionWriter refuses NaN, so write valid maps and poison them afterwards.
    sub = write_submission(tmp_path / "nan", bench)
    for it in bench.items("0"):
        np.save(sub / "0" / "maps" / Path(it.img_path).with_suffix(".npy"), np.full((32, 32), np.nan, f32))
    problems, stopped = validate_report(sub, root)
    assert len(problems) == MAX_PROBLEMS and stopped
    assert main(["validate", str(sub), "--benchmark", str(root), "--quiet"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == MAX_PROBLEMS + 1 and "stopped after 20" in lines[-1]
    assert all("NaN" in line for line in lines[:-1])


def test_bad_benchmark_folder_is_one_line(valid_sub, tmp_path, capsys):
    assert main(["validate", str(valid_sub), "--benchmark", str(tmp_path / "nowhere"), "--quiet"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "nowhere" in lines[0] and "not a folder" in lines[0]


def test_missing_submission_folder_is_one_line(tmp_path, bench_dir, capsys):
    assert main(["validate", str(tmp_path / "nope"), "--benchmark", str(bench_dir)]) == 1
    assert capsys.readouterr().err.splitlines() == [f"{tmp_path / 'nope'}: no such folder"]


def test_cli_subprocess_reports_without_traceback(valid_sub, bench_dir):
    (valid_sub / MAP).unlink()
    proc = subprocess.run([sys.executable, "-m", "evaluator", "validate", str(valid_sub), "--benchmark", str(bench_dir)],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"{valid_sub / MAP}: missing map for test image {IMG} (a .npy, .png or .tiff file)"]


_NAMES = ["a/b.jpg", "a/b.c.jpg", "a/.hidden", "a/b.", "b", "a/b..png", ".x.y", "a.b/c", "a/b.tar.gz", "x/.",
          "val2017/000000000139.jpg", "/abs/x.jpg", "../x.jpg", "a/../b.jpg", "", ".", "./a.jpg", "a//b.jpg",
          "a/./b.jpg", "a/b/"]


@pytest.mark.parametrize("img_path", _NAMES)
def test_map_names_follow_pathlib(img_path):
    # the string fast path names every map as PurePosixPath(split, "maps", img_path).with_suffix("") does
    from pathlib import PurePosixPath

    from evaluator.validate import _map_key, _split_suffix

    p = PurePosixPath(img_path)
    want = None if p.is_absolute() or ".." in p.parts or not p.parts else str(PurePosixPath("0", "maps", p.with_suffix("")))
    assert _map_key("0", img_path) == want
    if want is not None:
        assert _split_suffix(str(p)) == (str(p.with_suffix("")), p.suffix)
