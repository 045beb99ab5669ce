"""The shared public API of the benchmark stage: reader, protocol, files, submission writer."""

import json

import numpy as np
import pytest

from benchmark import BenchmarkError, open_benchmark
from contract.files import atomic_write_bytes, sha256_bytes, sha256_of_listing
from benchmark.protocol import resize_map, resize_mask
from evaluator.submission import SubmissionWriter, map_relpath


def test_reader_opens_handmade_folder(make_benchmark):
    root = make_benchmark(splits=("0", "1"), classes=("a", "b"), n_train=2, n_test_normal=1, n_test_anomalous=2)
    bench = open_benchmark(root)
    assert bench.split_ids == ["0", "1"]
    assert bench.classes("0") == ["a", "b"]
    test = bench.items("0")
    assert [it.img_path for it in test] == sorted(it.img_path for it in test)
    assert sum(it.anomaly for it in test) == 4
    assert len(bench.items("1", "train")) == 4
    anomalous = next(it for it in test if it.anomaly)
    gt = bench.gt_mask(anomalous)
    assert gt.shape == bench.eval_size and gt.dtype == bool and gt.any()
    normal = next(it for it in test if not it.anomaly)
    assert not bench.gt_mask(normal).any()
    assert bench.sha256 == sha256_bytes((root / "benchmark.json").read_bytes())


def test_reader_errors_are_one_line(tmp_path, make_benchmark):
    with pytest.raises(BenchmarkError, match="not a folder"):
        open_benchmark(tmp_path / "nope")
    (tmp_path / "b").mkdir()
    with pytest.raises(BenchmarkError, match="missing"):
        open_benchmark(tmp_path / "b")
    (tmp_path / "b" / "benchmark.json").write_text("{not json")
    with pytest.raises(BenchmarkError, match="not valid JSON"):
        open_benchmark(tmp_path / "b")
    bench = open_benchmark(make_benchmark())
    with pytest.raises(BenchmarkError, match="no split '7'"):
        bench.items("7")


def test_split_checksum_is_sha256sum_listing():
    # sha256sum's format: "<digest>  <path>\n", sorted by path
    entries = [("b.png", "2" * 64), ("a.json", "1" * 64)]
    expected = sha256_bytes(("1" * 64 + "  a.json\n" + "2" * 64 + "  b.png\n").encode())
    assert sha256_of_listing(entries) == expected


def test_atomic_write_leaves_no_temp(tmp_path):
    atomic_write_bytes(tmp_path / "d" / "x.bin", b"abc")
    atomic_write_bytes(tmp_path / "d" / "x.bin", b"def")
    assert (tmp_path / "d" / "x.bin").read_bytes() == b"def"
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["x.bin"]


def test_protocol_resizes_like_pillow_bilinear():
    """Both resizes are Pillow's bilinear filter itself: compared with Pillow called directly."""
    from PIL import Image

    rng = np.random.default_rng(0)
    mask = np.zeros((37, 53), np.uint8)
    mask[5:20, 8:31] = 255
    mask[25:27, 40:52] = 255
    for size in ((16, 16), (64, 96), (37, 53)):
        h, w = size
        want = np.asarray(Image.fromarray(mask).resize((w, h), Image.BILINEAR)) > 127
        got = resize_mask(mask, size)
        assert got.dtype == bool and got.shape == size
        np.testing.assert_array_equal(got, want)
    amap = rng.standard_normal((23, 41)).astype(np.float32)
    for size in ((8, 16), (64, 48), (256, 256)):
        h, w = size
        want = np.asarray(Image.fromarray(amap).resize((w, h), Image.BILINEAR))
        got = resize_map(amap, size)
        assert got.dtype == np.float32 and got.shape == size
        np.testing.assert_array_equal(got, want)
    # Bilinear, not nearest: the resized map takes values between its neighbours.
    assert not np.isin(resize_map(amap, (64, 48)), amap).all()
    same = np.ones((8, 8), np.float16)
    assert resize_map(same, (8, 8)) is same


def test_submission_writer_roundtrip(tmp_path, make_benchmark):
    bench = open_benchmark(make_benchmark(splits=("0",), n_test_normal=2, n_test_anomalous=1))
    out = tmp_path / "sub"
    with SubmissionWriter(out, bench, method={"name": "Const"}, splits=["0"]) as w:
        for i, it in enumerate(bench.items("0")):
            w.add("0", it.img_path, np.full((32, 32), i, np.float32), score=float(i))
    doc = json.loads((out / "submission.json").read_text())
    assert doc == {"schema_version": 1, "benchmark": {"name": bench.name, "version": bench.version},
                   "method": {"name": "Const"}, "splits": ["0"]}
    first = bench.items("0")[0]
    arr = np.load(out / map_relpath("0", first.img_path))
    assert arr.dtype == np.float16 and arr.shape == (32, 32)
    lines = (out / "0" / "scores.csv").read_text().splitlines()
    assert lines[0] == "img_path,score" and len(lines) == 1 + len(bench.items("0"))
    assert not out.with_name("sub.partial").exists()


def test_submission_writer_refuses_incomplete_and_bad_maps(tmp_path, make_benchmark):
    bench = open_benchmark(make_benchmark())
    with pytest.raises(ValueError, match="finite"):
        SubmissionWriter(tmp_path / "nan", bench, method={"name": "X", "params_m": float("nan")})
    assert not (tmp_path / "nan.partial").exists()
    w = SubmissionWriter(tmp_path / "sub", bench, method={"name": "X"})
    item = bench.items("0")[0]
    with pytest.raises(ValueError, match="NaN"):
        w.add("0", item.img_path, np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        w.add("0", item.img_path, np.zeros((1, 4, 4)))
    with pytest.raises(KeyError):
        w.add("0", "val/unknown.jpg", np.zeros((4, 4)))
    w.add("0", item.img_path, np.zeros((4, 4)))
    with pytest.raises(RuntimeError, match="have no map"):
        w.close()
    w.abort()
    assert not (tmp_path / "sub").exists() and not (tmp_path / "sub.partial").exists()


def test_replace_folder_swaps_and_leaves_nothing_behind(tmp_path):
    from contract.files import replace_folder

    final, staged = tmp_path / "out", tmp_path / "out.partial"
    final.mkdir()
    (final / "old.txt").write_text("old")
    staged.mkdir()
    (staged / "new.txt").write_text("new")
    replace_folder(staged, final)
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
