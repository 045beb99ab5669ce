"""Reading a benchmark folder (SPEC §3): ``benchmark.json``, ADer meta files, masks.

This is the one place that knows the folder layout; the evaluator and the
baselines read benchmarks only through :func:`open_benchmark`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from contract.files import sha256_bytes
from contract.names import sort_split_ids

MANIFEST = "benchmark.json"
#: How a COCO-AD build turned annotations into masks (``benchmark.json`` →
#: ``masks``): ``pycocotools`` rasterises as ``COCO.annToMask``; ``ader`` draws
#: as ADer's ``data/gen_benchmark/coco.py`` drew the published COCO-AD.
#: Folders without the key (older builds, copied masks) read as the default.
MASK_MODES = ("pycocotools", "ader")
DEFAULT_MASKS = "pycocotools"
_REQUIRED_KEYS = ("name", "version", "image_root", "protocol", "splits", "files")
_SPLIT_KEYS = ("meta", "mask_dir", "counts")


class BenchmarkError(Exception):
    """A benchmark folder that cannot be read; the message is one line for the user."""


@dataclass(frozen=True, order=True)
class Item:
    """One entry of an ADer meta file (SPEC §3)."""

    img_path: str
    mask_path: str
    cls_name: str
    specie_name: str
    anomaly: int

    @classmethod
    def from_meta(cls, d: dict, where: str) -> "Item":
        try:
            return cls(
                img_path=str(d["img_path"]),
                mask_path=str(d.get("mask_path", "") or ""),
                cls_name=str(d["cls_name"]),
                specie_name=str(d.get("specie_name", "") or ""),
                anomaly=int(d["anomaly"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise BenchmarkError(f"{where}: malformed meta item {d!r} ({e})") from None

    def to_meta(self) -> dict:
        return {
            "img_path": self.img_path,
            "mask_path": self.mask_path,
            "cls_name": self.cls_name,
            "specie_name": self.specie_name,
            "anomaly": self.anomaly,
        }


class Benchmark:
    """A benchmark folder opened for reading.

    Attributes: ``root`` (folder), ``manifest`` (parsed ``benchmark.json``),
    ``name``, ``version``, ``protocol``, ``split_ids`` (sorted), ``sha256``
    (of ``benchmark.json``'s bytes: the benchmark's checksum), ``masks``.
    """

    def __init__(self, root: Path, manifest: dict, manifest_bytes: bytes):
        self.root = root
        self.manifest = manifest
        self.sha256 = sha256_bytes(manifest_bytes)
        self.name: str = manifest["name"]
        self.version: str = str(manifest["version"])
        self.protocol: dict = manifest["protocol"]
        self.split_ids: list[str] = sort_split_ids(manifest["splits"])
        self._items: dict[tuple[str, str], list[Item]] = {}

    def __repr__(self) -> str:
        return f"Benchmark({self.name!r} v{self.version}, splits={self.split_ids}, root={str(self.root)!r})"

    @cached_property
    def image_root(self) -> Path:
        return self.root / self.manifest.get("image_root", ".")

    @property
    def masks(self) -> str:
        """How the masks were made: ``"pycocotools"`` or ``"ader"`` (see :data:`MASK_MODES`)."""
        return str(self.manifest.get("masks", DEFAULT_MASKS))

    @property
    def eval_size(self) -> tuple[int, int]:
        """(height, width) at which maps and ground truth are compared."""
        h, w = self.protocol["eval_size"]
        return int(h), int(w)

    def split(self, sid: str) -> dict:
        sid = str(sid)
        if sid not in self.manifest["splits"]:
            raise BenchmarkError(
                f"{self.root / MANIFEST}: no split {sid!r} (this benchmark has {', '.join(self.split_ids)})"
            )
        return self.manifest["splits"][sid]

    def meta_path(self, sid: str) -> Path:
        return self.root / self.split(sid)["meta"]

    def items(self, sid: str, part: str = "test") -> list[Item]:
        """Items of ``part`` ("train" or "test") of split ``sid``, sorted by ``img_path``."""
        sid = str(sid)
        key = (sid, part)
        if key not in self._items:
            self._load_meta(sid)
        return self._items[key]

    def classes(self, sid: str) -> list[str]:
        """Sorted class names (``cls_name``) of the split's test set."""
        return sorted({it.cls_name for it in self.items(sid, "test")})

    def image_file(self, item: Item) -> Path:
        return self.image_root / item.img_path

    def mask_file(self, item: Item) -> Path | None:
        return (self.root / item.mask_path) if item.mask_path else None

    def gt_mask(self, item: Item) -> np.ndarray:
        """Ground truth at the protocol's evaluation size, as a bool array (H, W).

        Normal images (and anomalous ones without a mask file) are all False.
        """
        from benchmark.protocol import load_gt_mask  # local: keeps PIL off the import path

        return load_gt_mask(self.mask_file(item), self.eval_size, self.protocol)

    def _load_meta(self, sid: str) -> None:
        path = self.meta_path(sid)
        try:
            meta = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise BenchmarkError(f"{path}: meta file missing; rebuild the benchmark") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BenchmarkError(f"{path}: not valid JSON ({e.msg if hasattr(e, 'msg') else e})") from None
        for part in ("train", "test"):
            block = meta.get(part, {}) if isinstance(meta, dict) else None
            if not isinstance(block, dict):
                raise BenchmarkError(f"{path}: '{part}' must map class names to item lists")
            out: list[Item] = []
            for cls_name, lst in block.items():
                if not isinstance(lst, list):
                    raise BenchmarkError(f"{path}: {part}/{cls_name} is not a list")
                out.extend(Item.from_meta(d, str(path)) for d in lst)
            out.sort()
            self._items[(sid, part)] = out


def open_benchmark(root: str | Path) -> Benchmark:
    """Open a benchmark folder; raises :class:`BenchmarkError` with a one-line message."""
    root = Path(root)
    if not root.is_dir():
        raise BenchmarkError(f"{root}: not a folder (expected a benchmark folder with {MANIFEST})")
    mpath = root / MANIFEST
    try:
        data = mpath.read_bytes()
    except FileNotFoundError:
        raise BenchmarkError(f"{mpath}: missing; build the benchmark first (python -m benchmark.build)") from None
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchmarkError(f"{mpath}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise BenchmarkError(f"{mpath}: must be a JSON object")
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BenchmarkError(f"{mpath}: missing key(s) {', '.join(missing)}")
    if not isinstance(manifest["splits"], dict) or not manifest["splits"]:
        raise BenchmarkError(f"{mpath}: 'splits' must be a non-empty object")
    for sid, entry in manifest["splits"].items():
        if not isinstance(entry, dict) or any(k not in entry for k in _SPLIT_KEYS):
            raise BenchmarkError(f"{mpath}: split {sid!r} lacks one of {', '.join(_SPLIT_KEYS)}")
    return Benchmark(root, manifest, data)
