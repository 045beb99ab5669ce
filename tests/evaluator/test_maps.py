"""The map readers: every accepted format gives the right values, everything else a MapError."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from evaluator.maps import MAX_SIDE, MapError, decode_map, load_map, read_map


def _save(path, arr, **kw):
    if path.suffix == ".npy":
        np.save(path, arr, **kw)
    else:
        Image.fromarray(arr).save(path)
    return path


@pytest.mark.parametrize("dtype", ["<f2", "<f4", ">f2", ">f4"])
@pytest.mark.parametrize("fortran", [False, True])
def test_npy_values_roundtrip(tmp_path, dtype, fortran):
    arr = np.random.default_rng(0).random((5, 7)).astype(dtype)
    if fortran:
        arr = np.asfortranarray(arr)
    p = _save(tmp_path / "m.npy", arr)
    out, digest = load_map(p)
    assert out.dtype == np.dtype(dtype).newbyteorder("=") and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    assert digest == hashlib.sha256(p.read_bytes()).hexdigest()


def test_png16_is_value_over_65535(tmp_path):
    raw = np.array([[0, 1, 65535], [32768, 2, 3]], np.uint16)
    path = _save(tmp_path / "m.png", raw)
    codes = load_map(path)[0]  # the scorer keeps the codes: a fixed-size table of 65,536 keys
    assert codes.dtype == np.uint16
    np.testing.assert_array_equal(codes, raw)
    out = read_map(path)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, raw.astype(np.float32) / np.float32(65535))
    assert out[0, 2] == 1.0 and out[0, 0] == 0.0


def test_tiff_float32_exact(tmp_path):
    arr = (np.random.default_rng(1).standard_normal((6, 4)) * 100).astype(np.float32)
    out = load_map(_save(tmp_path / "m.tiff", arr))[0]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, arr)


def test_npy_header_is_checked_before_the_body(tmp_path):
    # A header claiming a huge map in a 200-byte file: refused by the shape limit, not by a failed read.
    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (MAX_SIDE + 1, 10)})
    p = tmp_path / "m.npy"
    p.write_bytes(buf.getvalue() + b"\0" * 100)
    with pytest.raises(MapError, match="limit"):
        load_map(p)
    # A plausible shape whose body the file does not hold: refused from the sizes alone.
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f2", "fortran_order": False, "shape": (8192, 8192)})
    p.write_bytes(buf.getvalue() + b"\0" * 100)
    with pytest.raises(MapError, match="truncated: header says"):
        load_map(p)


def test_object_npy_is_never_unpickled(tmp_path, monkeypatch):
    import pickle

    p = tmp_path / "m.npy"
    np.save(p, np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(MapError, match="object"):
        load_map(p)


@pytest.mark.parametrize(
    "suffix, arr, words",
    [
        (".npy", np.zeros((3, 3), np.float64), "float64"),
        (".npy", np.zeros((3, 3), np.uint16), "uint16"),
        (".npy", np.zeros((3, 3), np.complex64), "complex64"),
        (".npy", np.zeros((2, 3, 3), np.float32), "2-D"),
        (".npy", np.zeros((), np.float32), "2-D"),
        (".npy", np.array([[1, np.nan]], np.float16), "NaN"),
        (".png", np.zeros((3, 3, 4), np.uint8), "mode RGBA"),
        (".png", np.zeros((3, 3), np.uint8), "mode L"),
        (".png", np.zeros((3, 3), bool), "mode 1"),
        (".tiff", np.zeros((3, 3), np.uint8), "TIFF mode L"),
        (".tiff", np.array([[np.inf, 0]], np.float32), "infinite"),
    ],
)
def test_refused_contents(tmp_path, suffix, arr, words):
    with pytest.raises(MapError, match=words):
        load_map(_save(tmp_path / f"m{suffix}", arr))


def test_refused_files(tmp_path):
    with pytest.raises(MapError, match="missing"):
        load_map(tmp_path / "none.npy")
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(MapError, match="regular file"):
        load_map(tmp_path / "d.npy")
    with pytest.raises(MapError, match="unknown map type"):
        decode_map(b"abc", ".jpg")
    with pytest.raises(MapError, match="not a readable PNG"):
        decode_map(b"GIF89a....", ".png")


def test_messages_are_one_line(tmp_path):
    p = tmp_path / "m.npy"
    p.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4\n  ")
    with pytest.raises(MapError) as info:
        load_map(p)
    assert "\n" not in str(info.value)
