"""Qualitative panels: test image | ground truth | anomaly-map overlay, one PNG each.

Written by ``python -m evaluator score --panels N`` beside the result file, in
``<result stem>_panels/<split>/<image stem>.png``, and listed in the result's
``panels`` (paths relative to the result file's folder), so the leaderboard can
show them without the submission or benchmark folders.

Which images: per split, the first N of the test images ordered anomalous
first, each group by ``img_path``. Colour scale: fixed per (split, class), the
range of that class's maps at the evaluation size, so panels of one class are
comparable. Bytes are deterministic: Agg backend, no PNG metadata.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path, PurePosixPath

import numpy as np

from benchmark import Benchmark, Item
from contract.files import atomic_write_bytes, replace_folder

CMAP = "jet"
OVERLAY_ALPHA = 0.5


def _test_image(bench: Benchmark, item: Item) -> np.ndarray | None:
    """The test image as RGB uint8 at the evaluation size, or None if unreadable."""
    from PIL import Image

    h, w = bench.eval_size
    try:
        with Image.open(bench.image_file(item)) as im:
            return np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR))
    except (OSError, ValueError):
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


def write_panels(bench: Benchmark, states, out: str | os.PathLike, warnings: list[str] | None = None) -> list[dict]:
    """Write the panels of every split (``states``: the scorer's per-split state) beside ``out``.

    The folder is assembled under ``<stem>_panels.partial`` and swapped into
    place, so it never mixes two runs. Returns the ``panels`` block.
    """
    out = Path(out)
    folder = out.parent / f"{out.stem}_panels"
    partial = folder.with_name(folder.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    listing = []
    for st in states:
        names = panel_names(st.panel_items)
        for item in st.panel_items:
            image = _test_image(bench, item)
            if image is None and warnings is not None:
                warnings.append(f"split {st.sid}: panel of {item.img_path} drawn without the image (cannot read it)")
            lo, hi = st.ranges.get(item.cls_name, (0.0, 1.0))
            label = "anomalous" if item.anomaly else "normal"
            png = render_panel(image, bench.gt_mask(item), st.panel_maps[item.img_path], lo, hi,
                               f"split {st.sid} · {item.cls_name} · {item.img_path} ({label})")
            rel = f"{st.sid}/{names[item.img_path]}"
            atomic_write_bytes(partial / rel, png)
            listing.append({"split": st.sid, "img_path": item.img_path, "file": f"{folder.name}/{rel}"})
    partial.mkdir(parents=True, exist_ok=True)
    replace_folder(partial, folder)
    return listing
