"""Reading a benchmark folder (SPEC §3): ``benchmark.json``, ADer meta files, masks.

This is the one place that knows the folder layout; the evaluator and the
baselines read benchmarks only through :func:`open_benchmark`.

A benchmark folder may come from anyone, so ``benchmark.json`` is checked
before use (types, sizes, relative paths inside the folder), and every
ground-truth input — meta files, masks, evaluation-size ground truth — is
read only through its sha256 in ``benchmark.json``'s ``files``: a file that is
changed, missing or not listed is refused with one line that suggests
``python -m benchmark.build verify``.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

import numpy as np

from contract.files import loads_json_strict, sha256_bytes
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
#: Largest ``benchmark.json`` / meta file / mask file / evaluation-size ground truth read (bytes).
MAX_MANIFEST_BYTES = 64 << 20
MAX_META_BYTES = 1 << 30
MAX_MASK_BYTES = 64 << 20
MAX_EVAL_GT_BYTES = 4 << 30
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_VERIFY = "check the folder with python -m benchmark.build verify"


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
        self.files: dict[str, str] = manifest["files"]
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

    def _listed_sha256(self, rel: str) -> str:
        want = self.files.get(rel)
        if want is None:
            raise BenchmarkError(f"{self.root / rel}: not listed in {self.root / MANIFEST} 'files', so it cannot "
                                 f"be certified; rebuild the benchmark or {_VERIFY}")
        return want

    def _changed(self, rel: str) -> BenchmarkError:
        return BenchmarkError(f"{self.root / rel}: does not match its sha256 in {self.root / MANIFEST} "
                              f"(changed or corrupted); {_VERIFY}")

    def read_listed(self, rel: str, limit: int) -> bytes:
        """The bytes of the listed file ``rel`` (relative to the folder), certified by its
        sha256 in ``files``; BenchmarkError (one line) if it is not listed, missing, a
        link or not a regular file, larger than ``limit`` bytes, or changed."""
        want = self._listed_sha256(rel)
        data = _read_regular(self.root / rel, limit, "rebuild the benchmark")
        if sha256_bytes(data) != want:
            raise self._changed(rel)
        return data

    def mask_bytes(self, item: Item) -> bytes | None:
        """The certified bytes of an item's mask file (see :meth:`read_listed`); None without one."""
        return self.read_listed(item.mask_path, MAX_MASK_BYTES) if item.mask_path else None

    def gt_mask(self, item: Item) -> np.ndarray:
        """Ground truth at the protocol's evaluation size, as a bool array (H, W).

        Normal images (and anomalous ones without a mask file) are all False.
        The mask file is certified by its sha256 first.
        """
        from benchmark.protocol import decode_gt_mask  # local: keeps PIL off the import path

        data = self.mask_bytes(item)
        if data is None:
            return np.zeros(self.eval_size, dtype=bool)
        try:
            return decode_gt_mask(data, self.eval_size, self.protocol)
        except ValueError as e:
            raise BenchmarkError(f"{self.mask_file(item)}: {e}; {_VERIFY}") from None

    def eval_gt(self, sid: str):
        """The split's evaluation-size ground truth (:class:`benchmark.eval_gt.EvalGT`),
        certified by its sha256; ``None`` for a folder built without it."""
        from benchmark import eval_gt

        rel = self.split(sid).get("eval_gt")
        if rel is None:
            return None
        masked = [it.img_path for it in self.items(sid, "test") if it.mask_path]
        want = self._listed_sha256(rel)
        # Hashed in chunks, then read row by row: memory does not grow with the split.
        fd, size = _open_regular(self.root / rel, MAX_EVAL_GT_BYTES, "rebuild the benchmark")
        try:
            h = hashlib.sha256()
            for block in iter(lambda: os.read(fd, 1 << 20), b""):
                h.update(block)
            if h.hexdigest() != want:
                raise self._changed(rel)
            return eval_gt.from_fd(fd, size, {p: i for i, p in enumerate(masked)}, self.eval_size)
        except ValueError as e:
            os.close(fd)
            raise BenchmarkError(f"{self.root / rel}: {e}; rebuild it with python -m benchmark.build gt "
                                 f"{self.root}") from None
        except BaseException:
            os.close(fd)
            raise

    def _load_meta(self, sid: str) -> None:
        path = self.meta_path(sid)
        data = self.read_listed(self.split(sid)["meta"], MAX_META_BYTES)
        try:
            meta = loads_json_strict(data)
        except ValueError as e:
            raise BenchmarkError(f"{path}: not valid JSON ({e})") from None
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


def _open_regular(path: Path, limit: int, fix: str) -> tuple[int, int]:
    """``(fd, size)`` of a regular file of at most ``limit`` bytes, opened without following a
    link; BenchmarkError (one line) otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise BenchmarkError(f"{path}: missing; {fix}") from None
    except OSError as e:
        raise BenchmarkError(f"{path}: cannot read ({e.strerror}); a benchmark holds regular files, not links") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BenchmarkError(f"{path}: not a regular file; {fix}")
        raise BenchmarkError(f"{path}: {st.st_size} bytes, more than the {limit} this file may have")
    return fd, st.st_size


def _read_regular(path: Path, limit: int, fix: str) -> bytes:
    """A regular file's bytes, opened without following a link; BenchmarkError otherwise."""
    fd, size = _open_regular(path, limit, fix)
    with os.fdopen(fd, "rb") as f:
        return f.read(size)


def inside_folder(rel) -> bool:
    """Whether ``rel`` (from ``benchmark.json`` or a meta file) is a relative POSIX path
    that stays inside the folder: text, not absolute, no ``..``, no backslash or NUL."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts


def _check_manifest(mpath: Path, manifest) -> None:
    """BenchmarkError (one line) unless ``benchmark.json`` has the shape SPEC §3 gives it."""
    if not isinstance(manifest, dict):
        raise BenchmarkError(f"{mpath}: must be a JSON object")
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BenchmarkError(f"{mpath}: missing key(s) {', '.join(missing)}")

    def bad(what: str):
        raise BenchmarkError(f"{mpath}: {what}; rebuild the benchmark or {_VERIFY}")

    if not isinstance(manifest["name"], str) or not isinstance(manifest["version"], (str, int)) \
            or isinstance(manifest["version"], bool):
        bad("'name' must be a string and 'version' a string")
    if not (manifest["image_root"] == "." or inside_folder(manifest["image_root"])):
        bad("'image_root' must be a relative path inside the folder")
    from benchmark.protocol import protocol_problems  # local: keeps PIL off the import path

    protocol = protocol_problems(manifest["protocol"])
    if protocol:
        bad(protocol[0])
    if manifest.get("masks", DEFAULT_MASKS) not in MASK_MODES:
        bad(f"'masks' must be one of {', '.join(MASK_MODES)}")
    files = manifest["files"]
    if not isinstance(files, dict) or not all(inside_folder(k) and isinstance(v, str) and _SHA256.match(v)
                                              for k, v in files.items()):
        bad("'files' must map relative paths inside the folder to sha256 digests")
    splits = manifest["splits"]
    if not isinstance(splits, dict) or not splits:
        raise BenchmarkError(f"{mpath}: 'splits' must be a non-empty object")
    for sid, entry in splits.items():
        if not isinstance(entry, dict) or any(k not in entry for k in _SPLIT_KEYS):
            raise BenchmarkError(f"{mpath}: split {sid!r} lacks one of {', '.join(_SPLIT_KEYS)}")
        if not inside_folder(entry["meta"]) or not inside_folder(entry["mask_dir"]) or not isinstance(entry["counts"], dict):
            bad(f"split {sid!r}: 'meta' and 'mask_dir' must be relative paths inside the folder")
        if "eval_gt" in entry and not inside_folder(entry["eval_gt"]):
            bad(f"split {sid!r}: 'eval_gt' must be a relative path inside the folder")


def open_benchmark(root: str | Path) -> Benchmark:
    """Open a benchmark folder; raises :class:`BenchmarkError` with a one-line message."""
    root = Path(root)
    if not root.is_dir():
        raise BenchmarkError(f"{root}: not a folder (expected a benchmark folder with {MANIFEST})")
    mpath = root / MANIFEST
    data = _read_regular(mpath, MAX_MANIFEST_BYTES, "build the benchmark first (python -m benchmark.build)")
    try:
        manifest = loads_json_strict(data)
    except ValueError as e:
        raise BenchmarkError(f"{mpath}: not valid JSON ({e})") from None
    _check_manifest(mpath, manifest)
    return Benchmark(root, manifest, data)
