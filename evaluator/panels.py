"""Qualitative panels: test image | ground truth | anomaly-map overlay, one PNG each.

Written by ``python -m evaluator score --panels N`` beside the result file, in
``<result stem>_panels/<split>/<image stem>.png``, and listed in the result's
``panels`` (paths relative to the result file's folder), so the leaderboard can
show them without the submission or benchmark folders. The folder and the
result are committed together (:mod:`evaluator.output`).

An anomalous image whose ground truth is empty says why in its title: a
zero-area annotation (its mask file is empty), or an object too small to
survive the resize to the evaluation size.

Which images: per split, the first N of the test images ordered anomalous
first, each group by ``img_path``. Colour scale: fixed per (split, class), the
range of that class's maps at the evaluation size, so panels of one class are
comparable. Bytes are deterministic: Agg backend, no PNG metadata.
"""

from __future__ import annotations

import io
import os
from pathlib import Path, PurePosixPath

import numpy as np

from benchmark import Benchmark, Item
from evaluator.output import panels_folder

CMAP = "jet"
OVERLAY_ALPHA = 0.5


def _test_image(bench: Benchmark, item: Item) -> np.ndarray | None:
    """The test image as RGB uint8 at the evaluation size, or None if unreadable
    (or larger than any ground-truth mask may be: a decompression bomb)."""
    import warnings

    from PIL import Image

    from benchmark.protocol import MAX_MASK_PIXELS

    h, w = bench.eval_size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(bench.image_file(item)) as im:
                if im.size[0] * im.size[1] > MAX_MASK_PIXELS:
                    return None
                return np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR))
    except Exception:  # Pillow raises many types on bad files (OSError, SyntaxError, DecompressionBombError, ...)
        return None


def render_panel(image: np.ndarray | None, gt: np.ndarray, amap: np.ndarray, vmin: float, vmax: float, title: str) -> bytes:
    """PNG bytes of one panel; ``vmin``/``vmax`` fix the colour scale of the map."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    if not vmax > vmin:
        vmax = vmin + 1.0  # constant maps: any scale shows them as one colour
    fig = Figure(figsize=(9.6, 3.3), dpi=100, layout="constrained")
    axes = fig.subplots(1, 3)
    base = image if image is not None else np.full(gt.shape + (3,), 128, np.uint8)
    axes[0].imshow(base, interpolation="nearest")
    axes[0].set_title("image" if image is not None else "image unavailable", fontsize=9)
    axes[1].imshow(gt, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[1].set_title("ground truth", fontsize=9)
    axes[2].imshow(base, interpolation="nearest")
    shown = axes[2].imshow(amap, cmap=CMAP, vmin=vmin, vmax=vmax, alpha=OVERLAY_ALPHA, interpolation="nearest")
    if gt.any() and not gt.all():
        axes[2].contour(gt.astype(np.float32), levels=[0.5], colors="white", linewidths=0.8)
    axes[2].set_title(f"anomaly map [{vmin:.3g}, {vmax:.3g}], ground truth outlined", fontsize=9)
    fig.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.02)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def panel_names(items: list[Item]) -> dict[str, str]:
    """File name per img_path: the image stem, or the whole path flattened where stems collide."""
    stems = [PurePosixPath(it.img_path).stem for it in items]
    out = {}
    for it, stem in zip(items, stems):
        name = stem if stems.count(stem) == 1 else str(PurePosixPath(it.img_path).with_suffix("")).replace("/", "__")
        out[it.img_path] = name + ".png"
    return out


def label_of(bench: Benchmark, item: Item, gt: np.ndarray) -> str:
    """The panel's label: normal, anomalous, or anomalous with an empty ground truth and why."""
    if not item.anomaly:
        return "normal"
    if gt.any():
        return "anomalous"
    import warnings

    from PIL import Image

    from benchmark.protocol import MAX_MASK_PIXELS

    data = bench.mask_bytes(item)  # certified by its sha256
    if data is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(data)) as im:
                    drawn = im.size[0] * im.size[1] <= MAX_MASK_PIXELS and im.convert("L").getbbox() is not None
        except Exception:  # an unreadable mask was refused when the ground truth was read
            drawn = False
        if drawn:
            return "anomalous (mask empty at the evaluation size)"
    return "anomalous (zero-area annotation: empty mask)"


def render_panels(bench: Benchmark, states, out: str | os.PathLike,
                  warnings: list[str] | None = None) -> tuple[list[tuple[str, bytes]], list[dict]]:
    """The panels of every split (``states``: the scorer's per-split state) for the result ``out``:
    ``([(path inside the panels folder, PNG bytes)], the result's panels block)``.

    Reading and drawing only; :mod:`evaluator.output` writes them.
    """
    folder = panels_folder(Path(out))
    files, listing = [], []
    for st in states:
        names = panel_names(st.panel_items)
        for item in st.panel_items:
            image = _test_image(bench, item)
            if image is None and warnings is not None:
                warnings.append(f"split {st.sid}: panel of {item.img_path} drawn without the image (cannot read it)")
            lo, hi = st.ranges.get(item.cls_name, (0.0, 1.0))
            gt = st.panel_gts[item.img_path]
            png = render_panel(image, gt, st.panel_maps[item.img_path], lo, hi,
                               f"split {st.sid} · {item.cls_name} · {item.img_path} ({label_of(bench, item, gt)})")
            rel = f"{st.sid}/{names[item.img_path]}"
            files.append((rel, png))
            listing.append({"split": st.sid, "img_path": item.img_path, "file": f"{folder.name}/{rel}"})
    return files, listing
