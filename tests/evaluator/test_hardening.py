"""Hostile inputs (issue 11): each one line naming the file, no traceback, nothing written,
bounded time and memory; crash and race safety of the result + panels commit."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import evaluator
from evaluator.cli import main
from evaluator.maps import MapError, load_map, max_pixels_for

from .conftest import tree_snapshot, write_submission

REPO = Path(__file__).parents[2]
MAP = "0/maps/val/a_0004"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png16_declaring(width: int, height: int, with_data: bool = True) -> bytes:
    """A 16-bit grayscale PNG of zeros declaring ``width`` × ``height`` (zlib makes it tiny)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    idat = b""
    if with_data:
        z = zlib.compressobj(9)
        row = b"\0" * (2 * width + 1)
        idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def tiff_chain(n_frames: int) -> bytes:
    """A float32 TIFF of ``n_frames`` chained 4×4 frames sharing one strip of data."""
    tags = [(256, 3, 4), (257, 3, 4), (258, 3, 32), (259, 3, 1), (262, 3, 1), (273, 4, 8), (277, 3, 1),
            (278, 3, 4), (279, 4, 64), (339, 3, 3)]
    ifd_size = 2 + 12 * len(tags) + 4
    out = [b"II*\x00", struct.pack("<I", 72), np.zeros(16, np.float32).tobytes()]
    for i in range(n_frames):
        nxt = 72 + (i + 1) * ifd_size if i + 1 < n_frames else 0
        entries = b"".join(struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3
                                                                   else struct.pack("<I", value))
                           for tag, kind, value in tags)
        out.append(struct.pack("<H", len(tags)) + entries + struct.pack("<I", nxt))
    return b"".join(out)


def _replace_map(sub: Path, data: bytes, suffix: str) -> Path:
    (sub / f"{MAP}.npy").unlink()
    path = sub / f"{MAP}{suffix}"
    path.write_bytes(data)
    return path


def _one_line(rc_and_err, path, words):
    rc, err = rc_and_err
    lines = err.splitlines()
    assert rc == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: ") and words in lines[0], lines[0]
    assert "Traceback" not in err


def _run(capsys, argv):
    rc = main(argv)
    return rc, capsys.readouterr().err


def test_multi_frame_tiff_is_refused_without_walking_the_chain(valid_sub, bench_dir, capsys):
    data = tiff_chain(9000)  # Pillow's n_frames walks all 9,000 frames: seconds
    path = _replace_map(valid_sub, data, ".tiff")
    t0 = time.perf_counter()
    with pytest.raises(MapError, match="more than one frame"):
        load_map(path, max_pixels_for((32, 32)))
    assert time.perf_counter() - t0 < 1.0
    _one_line(_run(capsys, ["validate", str(valid_sub), "--benchmark", str(bench_dir), "--quiet"]), path, "frame")
    single = tiff_chain(1)
    path.write_bytes(single)
    assert load_map(path)[0].shape == (4, 4)


def test_a_tiny_png_declaring_8192_squared_is_refused_from_its_header(valid_sub, bench_dir):
    path = _replace_map(valid_sub, png16_declaring(8192, 8192), ".png")
    assert path.stat().st_size < 300_000
    # The command in a child that reports its own peak memory when it ends: VmHWM (KiB) of its
    # address space, which starts afresh at exec (ru_maxrss would carry the forking parent's).
    code = ("import re, sys; from evaluator.cli import main; rc = main(sys.argv[1:]); "
            "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, "validate", str(valid_sub), "--benchmark", str(bench_dir),
                        "--quiet"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 1 and r.stderr.splitlines() == [
        f"{path}: map of shape (8192, 8192) has more than 65536 pixels (64 times the evaluation size); "
        "save it at the evaluation size"]
    assert int(r.stdout.split()[-1]) / 1024 < 300  # MiB; decoding it would take 830 MB


@pytest.mark.parametrize("case", ["map-bomb", "nested-submission-json", "nan-params", "inf-float", "huge-int",
                                  "csv-field-over-128k", "control-char-name"])
def test_hostile_submission_files_are_one_line(case, valid_sub, bench_dir, bench, capsys):
    manifest = valid_sub / "submission.json"
    doc = json.loads(manifest.read_text())
    if case == "map-bomb":  # more pixels than Pillow itself accepts
        target, words = _replace_map(valid_sub, png16_declaring(40000, 40000, with_data=False), ".png"), "bomb"
    elif case == "nested-submission-json":
        manifest.write_text("[" * 100_000 + "]" * 100_000)
        target, words = manifest, "nested too deeply"
    elif case == "nan-params":
        manifest.write_text(json.dumps(dict(doc, method=dict(doc["method"], params_m=float("nan")))))
        target, words = manifest, "NaN is not a number JSON allows"
    elif case == "inf-float":
        manifest.write_text(json.dumps(doc).replace('"paper"', '"params_m": 1e400, "paper"'))
        target, words = manifest, "1e400 is out of range"
    elif case == "huge-int":
        manifest.write_text(json.dumps(doc).replace('"paper"', f'"params_m": {"9" * 5000}, "paper"'))
        target, words = manifest, "malformed JSON"
    elif case == "csv-field-over-128k":
        target = valid_sub / "0" / "scores.csv"
        target.write_text("img_path,score\n" + "x" * (200 << 10) + ",1\n")
        words = "malformed CSV"
    else:
        target = valid_sub / "notes\nto self.txt"
        target.write_text("hi")
        words = "control characters"
        target = valid_sub / "notes\\nto self.txt"  # as the message prints it
    before = tree_snapshot(valid_sub.parent)
    validated = _run(capsys, ["validate", str(valid_sub), "--benchmark", str(bench_dir), "--quiet"])
    _one_line(validated, target, words)
    scored = _run(capsys, ["score", str(valid_sub), "--benchmark", str(bench_dir), "--quiet"])
    assert scored == validated  # score validates with the very same finding
    assert tree_snapshot(valid_sub.parent) == before


def test_non_utf8_file_name_validate_and_score_agree(valid_sub, bench_dir, capsys):
    fd = os.open(os.path.join(os.fsencode(valid_sub), b"caf\xe9.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    validated = _run(capsys, ["validate", str(valid_sub), "--benchmark", str(bench_dir), "--quiet"])
    _one_line(validated, valid_sub / "caf\\xe9.txt", "not valid UTF-8")
    assert _run(capsys, ["score", str(valid_sub), "--benchmark", str(bench_dir), "--quiet"]) == validated


def _edit_manifest(bench_dir: Path, **changes) -> Path:
    path = bench_dir / "benchmark.json"
    m = json.loads(path.read_text())
    for key, value in changes.items():
        if key.startswith("protocol__"):
            m["protocol"][key[len("protocol__"):]] = value
        else:
            m[key] = value
    path.write_text(json.dumps(m))
    return path


@pytest.mark.parametrize("change, words", [
    ({"protocol": "x"}, "protocol must be an object"),
    ({"protocol__eval_size": [60000, 60000]}, "protocol eval_size must be [height, width], integers 1…4096"),
    ({"protocol__eval_size": [256]}, "protocol eval_size"),
    ({"splits": ["0", "1"]}, "'splits' must be a non-empty object"),
    ({"image_root": "/etc"}, "'image_root' must be a relative path inside the folder"),
    ({"files": {"../../etc/passwd": "0" * 64}}, "'files' must map relative paths inside the folder"),
    ({"masks": "opencv"}, "'masks' must be one of pycocotools, ader"),
])
def test_hostile_benchmark_json_is_one_line(change, words, valid_sub, bench_dir, capsys):
    path = _edit_manifest(bench_dir, **change)
    for cmd in ("validate", "score"):
        rc, err = _run(capsys, [cmd, str(valid_sub), "--benchmark", str(bench_dir), "--quiet"])
        assert rc == 1 and len(err.splitlines()) == 1 and err.startswith(f"{path}: ") and words in err, err


def test_deeply_nested_benchmark_json(valid_sub, bench_dir, capsys):
    path = bench_dir / "benchmark.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    rc, err = _run(capsys, ["score", str(valid_sub), "--benchmark", str(bench_dir), "--quiet"])
    assert rc == 1 and err == f"{path}: not valid JSON (nested too deeply)\n"
    from benchmark.build import main as build_main

    assert build_main(["verify", str(bench_dir)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "nested too deeply" in err


def test_verify_with_splits_as_a_list_is_one_line(bench_dir, capsys):
    from benchmark.build import main as build_main

    _edit_manifest(bench_dir, splits=["0", "1"])
    assert build_main(["verify", str(bench_dir)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "'splits' object" in err and "Traceback" not in err


def test_mask_decompression_bomb_is_one_line(valid_sub, bench_dir, bench, capsys):
    from contract.files import sha256_file

    item = next(it for it in bench.items("0") if it.mask_path)
    mask = bench_dir / item.mask_path
    mask.write_bytes(png16_declaring(40000, 40000, with_data=False))
    m = json.loads((bench_dir / "benchmark.json").read_text())
    m["files"][item.mask_path] = sha256_file(mask)
    (bench_dir / "benchmark.json").write_text(json.dumps(m))
    rc, err = _run(capsys, ["score", str(valid_sub), "--benchmark", str(bench_dir), "--quiet"])
    assert rc == 1 and len(err.splitlines()) == 1 and err.startswith(f"{mask}: ") and "Traceback" not in err


def test_result_split_ids_have_a_pattern(valid_sub, bench_dir):
    schema = json.loads((Path(evaluator.__file__).parent / "schemas" / "result.schema.json").read_text())
    result = json.loads(json.dumps(evaluator.score(valid_sub, bench_dir)))
    jsonschema.Draft202012Validator(schema).validate(result)
    result["splits"]["<img src=x onerror=alert(1)>"] = result["splits"]["0"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(result)


# ------------------------------------------------------------- result + panels commit


def _panels_consistent(out: Path) -> int:
    """The result's panels are exactly the PNGs of its panels folder; no staging is left. Returns their count."""
    result = json.loads(out.read_text())
    listed = sorted(p["file"] for p in result.get("panels", []))
    folder = out.parent / f"{out.stem}_panels"
    on_disk = sorted(str(p.relative_to(out.parent)) for p in folder.rglob("*.png")) if folder.exists() else []
    assert listed == on_disk
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], list(out.parent.iterdir())
    return len(listed)


def test_concurrent_panel_runs_do_not_share_staging(tmp_path, bench_dir, bench):
    subs = [write_submission(tmp_path / "subs" / f"s{i}", bench) for i in range(2)]
    out = tmp_path / "results" / "r.json"
    errors = []

    def run(sub, n):
        try:
            evaluator.score(sub, bench_dir, out=out, panels=n)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(subs[i % 2], 1 + i % 3)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _panels_consistent(out) in (2, 4, 6)  # the last writer, whole: 1, 2 or 3 panels per split


def test_a_crash_between_the_swaps_is_rolled_forward(tmp_path, bench_dir, bench, monkeypatch):
    import evaluator.output as output

    sub = write_submission(tmp_path / "subs" / "noise", bench)
    out = tmp_path / "results" / "r.json"
    evaluator.score(sub, bench_dir, out=out, panels=1)
    assert _panels_consistent(out) == 2
    old_result = out.read_bytes()

    real_replace = os.replace

    def crash_on_the_result(src, dst):
        if Path(dst) == out:
            raise KeyboardInterrupt("killed between the panels swap and the result write")
        real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", crash_on_the_result)
    with pytest.raises(KeyboardInterrupt):
        evaluator.score(sub, bench_dir, out=out, panels=2)
    monkeypatch.setattr(output.os, "replace", real_replace)
    # The crash window: new panels, old result, the journal says how to finish.
    assert out.read_bytes() == old_result
    assert (tmp_path / "results" / ".r.json.commit").exists()
    assert output.recover(out) is True
    assert _panels_consistent(out) == 4  # the second run's pair, complete
    assert json.loads(out.read_text())["panels"][0]["file"].startswith("r_panels/")


def test_a_crash_before_the_journal_keeps_the_previous_pair(tmp_path, bench_dir, bench, monkeypatch):
    import evaluator.output as output

    sub = write_submission(tmp_path / "subs" / "noise", bench)
    out = tmp_path / "results" / "r.json"
    evaluator.score(sub, bench_dir, out=out, panels=1)
    snapshot = tree_snapshot(out.parent)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while staging")

    monkeypatch.setattr(output, "commit", crash)
    with pytest.raises(KeyboardInterrupt):
        evaluator.score(sub, bench_dir, out=out, panels=2)
    monkeypatch.undo()
    assert tree_snapshot(out.parent) == snapshot  # its staging removed, the previous pair untouched
    # A run killed outright (no cleanup) leaves its staging; a later run removes it once that process is gone.
    dead = out.parent / f".r_panels.{2**22 + 17}-deadbeef.tmp"
    (dead / "0").mkdir(parents=True)
    (dead / "0" / "x.png").write_bytes(b"png")
    assert output.recover(out) is False
    assert tree_snapshot(out.parent) == snapshot


def test_a_forged_commit_journal_moves_nothing(tmp_path, valid_sub, bench_dir, capsys):
    out = tmp_path / "results" / "r.json"
    out.parent.mkdir()
    keep = out.parent / "precious.txt"
    keep.write_text("mine")
    (out.parent / ".r.json.commit").write_text(json.dumps({"result": "precious.txt", "panels": "..", "old": None}))
    before = tree_snapshot(tmp_path / "results")
    rc, err = _run(capsys, ["score", str(valid_sub), "--benchmark", str(bench_dir), "--out", str(out), "--quiet"])
    assert rc == 1 and len(err.splitlines()) == 1 and "unreadable commit journal" in err
    assert tree_snapshot(tmp_path / "results") == before and not out.exists()
