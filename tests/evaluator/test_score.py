"""Scoring submission folders: the result file's format, values against scikit-learn on the
same arrays, resizing, scores.csv, undefined metrics, panels and byte-identical reruns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

import evaluator
from benchmark import open_benchmark
from contract.files import sha256_file, sha256_of_listing
from evaluator.cli import main
from evaluator.report import format_table
from contract.names import METRIC_NAMES
from evaluator.score import default_out
from evaluator.validate import SubmissionError

from .conftest import tree_snapshot, write_submission

RESULT_SCHEMA = json.loads((Path(evaluator.__file__).parent / "schemas" / "result.schema.json").read_text())


def check_result_schema(result: dict) -> None:
    jsonschema.Draft202012Validator(RESULT_SCHEMA).validate(json.loads(json.dumps(result)))


def _f1max(y, s):
    p, r, _ = precision_recall_curve(y, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return float(f1.max())


def pillow_resized(amap: np.ndarray, size) -> np.ndarray:
    """The protocol's map resize, done with Pillow itself: float32 (mode F), bilinear."""
    h, w = size
    return np.asarray(Image.fromarray(np.asarray(amap, np.float32)).resize((w, h), Image.BILINEAR))


def pillow_ground_truth(bench_root: Path, item, size, threshold: int = 127) -> np.ndarray:
    """The protocol's ground truth, computed here: the 8-bit mask resized by Pillow, then > 127."""
    h, w = size
    if not item.mask_path:
        return np.zeros(size, bool)
    with Image.open(bench_root / item.mask_path) as im:
        return np.asarray(im.convert("L").resize((w, h), Image.BILINEAR)) > threshold


def sklearn_reference(sub: Path, bench, scores_csv: dict | None = None) -> dict:
    """Per split and class, I-/P- AUROC, AP, F1max from scikit-learn over the pooled pixels of the
    files, resized and thresholded by Pillow here (not by the product's own functions)."""
    out = {}
    for sid in bench.split_ids:
        per_class = {}
        for cls in bench.classes(sid):
            labels, img_scores, gts, maps = [], [], [], []
            for it in bench.items(sid):
                if it.cls_name != cls:
                    continue
                path = next((sub / sid / "maps" / Path(it.img_path)).parent.glob(Path(it.img_path).stem + ".*"))
                amap = evaluator_map(path)
                if amap.shape != bench.eval_size:
                    amap = pillow_resized(amap, bench.eval_size)
                amap = amap.astype(np.float64)
                labels.append(it.anomaly)
                img_scores.append(amap.max() if scores_csv is None else scores_csv[sid][it.img_path])
                gts.append(pillow_ground_truth(bench.root, it, bench.eval_size).ravel())
                maps.append(amap.ravel())
            g, m = np.concatenate(gts), np.concatenate(maps)
            per_class[cls] = {
                "I-AUROC": roc_auc_score(labels, img_scores), "I-AP": average_precision_score(labels, img_scores),
                "I-F1max": _f1max(labels, img_scores),
                "P-AUROC": roc_auc_score(g, m), "P-AP": average_precision_score(g, m), "P-F1max": _f1max(g, m),
            }
        out[sid] = per_class
    return out


def evaluator_map(path: Path) -> np.ndarray:
    """Independent reading of a map file (numpy / Pillow directly)."""
    if path.suffix == ".npy":
        return np.load(path).astype(np.float32)
    with Image.open(path) as im:
        arr = np.asarray(im)
    return arr.astype(np.float32) / 65535 if path.suffix == ".png" else arr.astype(np.float32)


def assert_matches(result: dict, ref: dict, rel: float = 1e-9) -> None:
    for sid, per_class in ref.items():
        for cls, values in per_class.items():
            for m, v in values.items():
                assert result["splits"][sid]["classes"][cls][m] == pytest.approx(v, rel=rel, abs=1e-12), (sid, cls, m)
        for m in per_class[next(iter(per_class))]:
            split_mean = np.mean([values[m] for values in per_class.values()])
            assert result["splits"][sid][m] == pytest.approx(split_mean, rel=rel, abs=1e-12), (sid, m)
    for m in ("I-AUROC", "P-AP"):
        assert result["mean"][m] == pytest.approx(np.mean([result["splits"][s][m] for s in ref]), rel=1e-12)


def test_cli_score_end_to_end_and_rerun_is_byte_identical(valid_sub, bench, bench_dir):
    cmd = [sys.executable, "-m", "evaluator", "score", str(valid_sub), "--benchmark", str(bench_dir), "--panels", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=300)
    assert proc.returncode == 0, proc.stderr
    out_path = valid_sub.parent / "results" / "noise.exact.json"
    assert out_path == default_out(valid_sub)
    first = out_path.read_bytes()
    result = json.loads(first)
    check_result_schema(result)

    # The printed table: the title, one row per class and split, the mean, percentages with one decimal.
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Noise (noise) on tiny-ad v1, profile exact")
    mean_row = next(line for line in lines if line.startswith("mean ")).split()
    assert mean_row[1] == f"{100 * result['mean']['I-AUROC']:.1f}"
    assert any(line.startswith("  0/a ") for line in lines) and f"wrote {out_path}" in proc.stdout

    # The fixed parts of the format.
    assert result["evaluator"] == {"version": evaluator.__version__, "profile": "exact", "pool": None,
                                   "aupro_steps": None, "ground_truth": "masks",
                                   "versions": result["evaluator"]["versions"]}
    assert result["benchmark"] == {"name": "tiny-ad", "version": "1", "sha256": bench.sha256,
                                   "split_ids": ["0", "1"], "masks": "pycocotools"}
    assert result["complete"] is True
    assert result["submission"]["name"] == "noise" and result["submission"]["method"] == {"name": "Noise", "paper": "none"}
    files = sorted(str(p.relative_to(valid_sub)) for p in valid_sub.rglob("*") if p.is_file())
    assert result["submission"]["sha256"] == sha256_of_listing([(f, sha256_file(valid_sub / f)) for f in files])
    assert list(result["splits"]) == ["0", "1"] and set(result["splits"]["0"]["classes"]) == {"a", "b"}
    assert result["splits"]["0"]["n_images"] == 12 and result["splits"]["0"]["n_anomalous"] == 6
    assert set(result["mean"]) == set(METRIC_NAMES)
    assert set(result["sweeps"]) == {"0", "1"} and len(result["sweeps"]["0"]["F1"]) == len(result["sweeps"]["0"]["thresholds"])

    # Panels: 2 per split, anomalous first, sorted by img_path, PNG files beside the result.
    assert [(p["split"], p["img_path"]) for p in result["panels"]] == [
        (s, it.img_path) for s in ("0", "1") for it in [i for i in bench.items(s) if i.anomaly][:2]]
    panel_bytes = {}
    for p in result["panels"]:
        f = out_path.parent / p["file"]
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        panel_bytes[p["file"]] = f.read_bytes()

    # Rerun through the API: same bytes except `seconds`, panels byte-identical.
    again = evaluator.score(valid_sub, bench_dir, out=out_path, panels=2)
    second = out_path.read_bytes()
    assert json.loads(second) == again
    strip = [line for line in first.splitlines() if b'"seconds"' not in line]
    assert strip == [line for line in second.splitlines() if b'"seconds"' not in line]
    for f, data in panel_bytes.items():
        assert (out_path.parent / f).read_bytes() == data
    assert not list(out_path.parent.glob("*.partial")) and not list(out_path.parent.glob(".*.tmp"))


def test_values_equal_sklearn_on_the_same_arrays(valid_sub, bench, bench_dir):
    result = evaluator.score(valid_sub, bench_dir)
    assert result["splits"]["0"]["resized_maps"] == 0
    assert_matches(result, sklearn_reference(valid_sub, bench))
    assert "panels" not in result and not (valid_sub.parent / "results").exists()  # no out=: nothing written


def test_maps_equal_to_ground_truth_score_one(tmp_path, bench, bench_dir):
    sub = write_submission(tmp_path / "oracle", bench,
                           maps=lambda s, it: pillow_ground_truth(bench.root, it, bench.eval_size).astype(np.float32))
    result = evaluator.score(sub, bench_dir)
    for block in [result["mean"], *result["splits"].values()]:
        for m in ("I-AUROC", "P-AUROC", "I-AP", "P-AP", "P-F1max", "mIoU-max"):
            assert block[m] == 1.0, m
        assert block["AUPRO"] == pytest.approx(1.0, abs=1e-12)  # a sum of 1/area weights: float64 rounding
    check_result_schema(result)


def test_resized_maps_are_counted_and_resized_bilinearly(tmp_path, bench, bench_dir):
    rng = np.random.default_rng(5)
    odd = {it.img_path for it in bench.items("0") if it.cls_name == "a"}  # 6 maps of split 0 at 20x24

    def maps(sid, it):
        shape = (20, 24) if sid == "0" and it.img_path in odd else bench.eval_size
        return rng.random(shape, dtype=np.float32)

    sub = write_submission(tmp_path / "odd", bench, maps=maps)
    result = evaluator.score(sub, bench_dir)
    assert result["splits"]["0"]["resized_maps"] == 6 and result["splits"]["1"]["resized_maps"] == 0
    assert any("split 0: 6 of 12 maps were resized" in w for w in result["warnings"])
    assert_matches(result, sklearn_reference(sub, bench))


def test_scores_csv_overrides_the_map_maximum(tmp_path, bench, bench_dir):
    perfect = {s: {it.img_path: float(it.anomaly) + 0.01 * i for i, it in enumerate(bench.items(s))} for s in bench.split_ids}
    sub = write_submission(tmp_path / "scored", bench, scores=lambda s, it: perfect[s][it.img_path])
    result = evaluator.score(sub, bench_dir)
    for s in bench.split_ids:
        assert result["splits"][s]["I-AUROC"] == 1.0 and result["splits"][s]["I-AP"] == 1.0
    assert_matches(result, sklearn_reference(sub, bench, perfect))
    without = evaluator.score(write_submission(tmp_path / "unscored", bench), bench_dir)
    assert without["mean"]["I-AUROC"] < 1.0  # the same noise maps, scored by their maxima


def test_png_and_tiff_maps_score_like_their_values(valid_sub, bench, bench_dir):
    items = bench.items("0")
    for k, it in enumerate(items):
        npy = valid_sub / "0" / "maps" / Path(it.img_path).with_suffix(".npy")
        arr = np.load(npy)
        npy.unlink()
        if k % 2:
            Image.fromarray(arr.astype(np.float32)).save(npy.with_suffix(".tiff"))
        else:
            Image.fromarray(np.round(arr.astype(np.float64) * 65535).astype(np.uint16)).save(npy.with_suffix(".png"))
    result = evaluator.score(valid_sub, bench_dir)
    assert_matches(result, sklearn_reference(valid_sub, bench))


def test_undefined_metrics_are_null_with_warnings(tmp_path, make_benchmark, capsys):
    root = make_benchmark(classes=("a",), n_test_normal=4, n_test_anomalous=0, n_train=1)
    bench = open_benchmark(root)
    sub = write_submission(tmp_path / "subs" / "normal-only", bench)
    assert main(["score", str(sub), "--benchmark", str(root), "--quiet"]) == 0
    printed = capsys.readouterr().out
    result = json.loads(default_out(sub).read_text())
    check_result_schema(result)
    for block in (result["splits"]["0"]["classes"]["a"], result["splits"]["0"], result["mean"]):
        assert block["I-AUROC"] is None and block["P-AUROC"] is None and block["AUPRO"] is None
    assert any(w.startswith("split 0, class a: I-AUROC: undefined") for w in result["warnings"])
    assert "n/a" in printed and "warning(s):" in printed


def test_undefined_class_is_left_out_of_the_split_mean(tmp_path, bench, bench_dir):
    # Class b of split 0 gets constant maps: its threshold metrics are undefined, class a alone makes the mean.
    sub = write_submission(tmp_path / "const-b", bench,
                           maps=lambda s, it: np.full(bench.eval_size, 0.5, np.float32) if (s, it.cls_name) == ("0", "b")
                           else pillow_ground_truth(bench.root, it, bench.eval_size).astype(np.float32) * 0.7 + 0.1)
    result = evaluator.score(sub, bench_dir)
    split = result["splits"]["0"]
    assert split["classes"]["b"]["mF1_.2_.8"] is None
    assert split["mF1_.2_.8"] == split["classes"]["a"]["mF1_.2_.8"]
    assert any(w.startswith("split 0, class b: mF1_.2_.8: undefined") for w in result["warnings"])


def test_profile_ader_with_pool(valid_sub, bench_dir, capsys):
    out = default_out(valid_sub, "ader", 4)
    assert out.name == "noise.ader.pool4.json"
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--profile", "ader", "--pool", "4", "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert result["evaluator"]["profile"] == "ader" and result["evaluator"]["pool"] == 4
    assert len(result["sweeps"]["0"]["thresholds"]) == 21
    exact = evaluator.score(valid_sub, bench_dir)
    assert result["splits"]["0"]["P-AUROC"] == exact["splits"]["0"]["P-AUROC"]  # profiles share the exact ROC
    capsys.readouterr()
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--pool", "4"]) == 1
    assert "--profile ader" in capsys.readouterr().err
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--profile", "ader", "--pool", "64"]) == 1
    assert "larger than the evaluation size" in capsys.readouterr().err


def test_result_inside_the_submission_is_refused(valid_sub, bench_dir, capsys):
    before = tree_snapshot(valid_sub)
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--out", str(valid_sub / "r.json")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "must not lie inside the submission folder" in err[0]
    assert tree_snapshot(valid_sub) == before
    with pytest.raises(SubmissionError):
        evaluator.score(valid_sub, bench_dir, out=valid_sub / "0" / "r.json")


def test_table_shows_percent_with_one_decimal():
    block = {m: 0.5 for m in METRIC_NAMES} | {"I-AUROC": 0.98765, "AUPRO": None, "n_images": 10, "n_anomalous": 4}
    result = {"splits": {"0": dict(block, classes={"coco": block}), "1": dict(block, classes={"coco": block})},
              "mean": {m: block[m] for m in METRIC_NAMES}}
    lines = format_table(result).splitlines()
    assert lines[0].split()[:3] == ["split", "I-AUROC", "I-AP"]
    assert lines[2].split() == ["0", "98.8", "50.0", "50.0", "n/a", "50.0", "50.0", "50.0", "50.0", "50.0", "50.0", "50.0",
                                "10", "4"]
    assert lines[-1].split()[:2] == ["mean", "98.8"]


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_maps_are_streamed_with_bounded_read_ahead(valid_sub, bench_dir, monkeypatch, workers):
    import weakref

    import evaluator.maps

    score_module = sys.modules["evaluator.score"]
    alive, most = set(), [0]

    def tracking_load_map(path, *args, **kwargs):
        arr, digest = evaluator.maps.load_map(path, *args, **kwargs)
        key = id(arr)
        alive.add(key)
        weakref.finalize(arr, alive.discard, key)
        most[0] = max(most[0], len(alive))
        return arr, digest

    monkeypatch.setattr(score_module, "load_map", tracking_load_map)
    monkeypatch.setattr(score_module, "_io_workers", lambda: workers)
    result = evaluator.score(valid_sub, bench_dir)
    assert result["splits"]["0"]["n_images"] == 12
    # Serial: the map being read and the previous one (still bound to its name).
    # Threaded: the read-ahead window of 4 per worker, plus those two; never all 24.
    assert most[0] <= (2 if workers == 0 else 4 * workers + 2)


def test_unwritable_out_is_one_line(valid_sub, bench_dir, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--out", str(tmp_path / "taken"), "--quiet"]) == 1
    assert capsys.readouterr().err.splitlines() == [f"{tmp_path / 'taken'}: is a folder; the result is a file (give --out FILE.json)"]
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "r.json"
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"{out}: cannot write")



def test_panel_labels_say_why_a_ground_truth_is_empty(bench_dir):
    from PIL import Image as PILImage

    from contract.files import sha256_file
    from evaluator.panels import label_of

    bench = open_benchmark(bench_dir)
    zero_area, tiny, drawn = [it for it in bench.items("0") if it.mask_path][:3]
    empty = np.zeros((48, 64), np.uint8)
    dot = empty.copy()
    dot[10, 10] = 255  # one native pixel: gone after the bilinear resize to 32x32 and the > 127 threshold
    manifest = json.loads((bench_dir / "benchmark.json").read_text())
    for it, arr in ((zero_area, empty), (tiny, dot)):
        PILImage.fromarray(arr).save(bench_dir / it.mask_path)
        manifest["files"][it.mask_path] = sha256_file(bench_dir / it.mask_path)
    (bench_dir / "benchmark.json").write_text(json.dumps(manifest))
    bench = open_benchmark(bench_dir)
    assert label_of(bench, zero_area, bench.gt_mask(zero_area)) == "anomalous (zero-area annotation: empty mask)"
    assert label_of(bench, tiny, bench.gt_mask(tiny)) == "anomalous (mask empty at the evaluation size)"
    assert label_of(bench, drawn, bench.gt_mask(drawn)) == "anomalous"
    normal = next(it for it in bench.items("0") if not it.anomaly)
    assert label_of(bench, normal, bench.gt_mask(normal)) == "normal"


def test_read_ahead_is_bounded_in_bytes():
    """prefetch never holds more than ``budget`` bytes of pending items (at least one), whatever the window."""
    from evaluator.score import prefetch

    sizes = [5, 40, 7, 90, 1, 1, 1, 60, 3, 30] * 3
    submitted = [-1]

    def cost(i):  # called in order, before item i is submitted (and before earlier items are handed out)
        submitted[0] = i
        return sizes[i]

    done, worst = [], 0
    for i in prefetch(lambda i: i, range(len(sizes)), workers=3, window=100, cost=cost, budget=100):
        worst = max(worst, sum(sizes[i + 1: submitted[0]]))  # submitted, not handed out yet
        done.append(i)
    assert done == list(range(len(sizes)))
    assert worst <= 100 and submitted[0] == len(sizes) - 1
