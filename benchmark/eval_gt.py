"""Evaluation-size ground truth: a split's test masks already at the protocol's size.

Scoring compares every map with its ground truth at ``protocol["eval_size"]``;
bringing thousands of native-size mask PNGs there (decode, Pillow bilinear
resize, threshold) costs more than the metrics themselves. So the builder also
writes, per split, the result of exactly that step (:func:`benchmark.protocol.decode_gt_mask`),
bit-packed:

- file ``<meta stem>_gt<H>x<W>.npy`` beside the meta file (e.g.
  ``meta_20_0_gt256x256.npy``), listed in ``benchmark.json``'s ``files`` with
  its sha256 and named by the split entry's ``"eval_gt"``;
- a ``.npy`` (NumPy's format, no pickle) of uint8, shape (n, H, ceil(W / 8)):
  row i is ``np.packbits(mask, axis=-1)`` (big bit order) of the i-th test
  item *with a mask file*, in the meta's order (sorted by ``img_path``); test
  items without a mask file are all normal and take no row. About 8 KiB per
  anomalous image at 256²: 30 MB for COCO-AD's split 0.

The evaluator uses it only after checking its sha256 against ``benchmark.json``
(:meth:`benchmark.Benchmark.eval_gt`); both paths give the same bits.
``python -m benchmark.build gt DIR`` adds it to a folder built without it, and
``verify`` recomputes it from the masks.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import sys
from pathlib import Path, PurePosixPath

import numpy as np

from benchmark.protocol import decode_gt_mask


def eval_gt_relpath(meta_rel: str, size: tuple[int, int]) -> str:
    """``meta_20_0.json`` → ``meta_20_0_gt256x256.npy`` (same folder)."""
    p = PurePosixPath(meta_rel)
    h, w = size
    return str(p.with_name(f"{p.stem}_gt{h}x{w}.npy"))


def packed_shape(n: int, size: tuple[int, int]) -> tuple[int, int, int]:
    h, w = size
    return n, h, (w + 7) // 8


def encode(packed: np.ndarray) -> bytes:
    """The file's bytes (deterministic: ``np.save`` of a C-contiguous uint8 array)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(packed, np.uint8), allow_pickle=False)
    return buf.getvalue()


class EvalGT:
    """One split's evaluation-size ground truth, by ``img_path`` (see the module docstring).

    Either an array in memory (``packed``) or an open, already certified file
    whose rows are read on demand (``os.pread``, safe from several threads),
    so memory does not grow with the number of images.
    """

    def __init__(self, rows: dict[str, int], size: tuple[int, int], packed: np.ndarray | None = None,
                 fd: int | None = None, offset: int = 0):
        self.rows, self.size = rows, (int(size[0]), int(size[1]))
        self.packed, self._fd, self._offset = packed, fd, offset
        self._shape = packed_shape(1, self.size)[1:]
        self._row_bytes = self._shape[0] * self._shape[1]

    def row(self, i: int) -> np.ndarray:
        """The packed row ``i``: uint8 (H, ceil(W / 8))."""
        if self.packed is not None:
            return self.packed[i]
        data = os.pread(self._fd, self._row_bytes, self._offset + i * self._row_bytes)
        if len(data) != self._row_bytes:
            raise ValueError("the file became shorter while it was read")
        return np.frombuffer(data, np.uint8).reshape(self._shape)

    def mask(self, img_path: str) -> np.ndarray:
        """bool (H, W); all False for an image without a mask file."""
        i = self.rows.get(img_path)
        if i is None:
            return np.zeros(self.size, bool)
        return np.unpackbits(self.row(i), axis=-1, count=self.size[1]).view(bool)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()


def from_fd(fd: int, file_size: int, rows: dict[str, int], size: tuple[int, int]) -> EvalGT:
    """An :class:`EvalGT` reading rows from the open file ``fd`` (``.npy``); ValueError (one
    line) unless it holds uint8 of shape (len(rows), H, ceil(W / 8)) and nothing else."""
    head = os.pread(fd, 4096, 0)
    f = io.BytesIO(head)
    try:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}[version]
        shape, fortran, dtype = read_header(f)
    except Exception as e:  # numpy raises ValueError, KeyError, EOFError, SyntaxError, ...
        raise ValueError(f"not a readable .npy file ({type(e).__name__})") from None
    want = packed_shape(len(rows), size)
    if dtype != np.uint8 or tuple(shape) != want or fortran:
        raise ValueError(f"holds {dtype} {tuple(shape)}, expected uint8 {want} "
                         f"({len(rows)} masked test images at {size[0]}x{size[1]})")
    offset = f.tell()
    if file_size != offset + want[0] * want[1] * want[2]:
        raise ValueError(f"holds {file_size - offset} bytes of rows, expected {want[0] * want[1] * want[2]}")
    return EvalGT(rows, size, fd=fd, offset=offset)


def _render(job) -> bytes:
    """Worker: one mask file → its packed evaluation-size rows (bytes), after checking its sha256."""
    path, sha256, size, protocol = job
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read the mask ({e.strerror})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{path}: does not match its sha256 in benchmark.json")
    try:
        mask = decode_gt_mask(data, size, protocol)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return np.packbits(mask, axis=-1).tobytes()


def render(jobs: list[tuple], size: tuple[int, int], workers: int = 1, quiet: bool = True) -> np.ndarray:
    """The packed array of ``jobs`` = ``[(mask path, its sha256, size, protocol)]``, in order.

    Each mask is checked against its sha256 and brought to ``size`` by the
    protocol; ``workers`` processes share the work. Raises ValueError naming
    the first file that is changed or unreadable.
    """
    from tqdm import tqdm

    out = np.empty(packed_shape(len(jobs), size), np.uint8)
    bar = tqdm(total=len(jobs), desc="evaluation-size ground truth", unit="mask", disable=True if quiet else None,
               file=sys.stderr, leave=False)
    try:
        if workers <= 1 or len(jobs) < 64:
            rows = map(_render, jobs)
            pool = None
        else:
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
            pool = ctx.Pool(workers)
            rows = pool.imap(_render, jobs, chunksize=32)
        try:
            for i, row in enumerate(rows):
                out[i] = np.frombuffer(row, np.uint8).reshape(out.shape[1:])
                bar.update()
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    finally:
        bar.close()
    return out


def split_jobs(root: Path, items, files: dict[str, str], protocol: dict) -> list[tuple]:
    """Render jobs of a split's test ``items`` (``(img_path, mask_path)`` pairs): its masked
    items in ``img_path`` order, each with the sha256 that ``files`` lists for its mask."""
    size = tuple(int(x) for x in protocol["eval_size"])
    return [(Path(root) / mask, files[mask], size, protocol)
            for _, mask in sorted((img, mask) for img, mask in items if mask)]


def write_split(root: Path, meta_rel: str, items, files: dict[str, str], protocol: dict,
                workers: int = 1, quiet: bool = True) -> tuple[str, str]:
    """Write one split's file (atomically); returns ``(relative path, sha256)``.

    ``items``: the split's test items as ``(img_path, mask_path)`` pairs;
    ``files``: ``{relative path: sha256}`` holding every mask they name.
    """
    from contract.files import atomic_write_bytes, sha256_bytes

    size = tuple(int(x) for x in protocol["eval_size"])
    data = encode(render(split_jobs(root, items, files, protocol), size, workers, quiet))
    rel = eval_gt_relpath(meta_rel, size)
    atomic_write_bytes(Path(root) / rel, data)
    return rel, sha256_bytes(data)


def add_to_folder(root: Path, workers: int = 1, quiet: bool = True) -> list[str]:
    """``python -m benchmark.build gt DIR``: write every split's file into an existing folder.

    Meta files and masks are certified by their sha256 first; ``benchmark.json``
    is rewritten (atomically, canonical JSON) with each split's ``eval_gt``, the
    new files and the split checksums that now include them. A rerun gives the
    same bytes. Returns the files written; raises BenchmarkError for a folder
    whose inputs do not match ``benchmark.json``.
    """
    from benchmark.folder import MANIFEST, BenchmarkError, open_benchmark
    from benchmark.manifest import owned_by
    from contract.files import atomic_write_json, sha256_of_listing

    bench = open_benchmark(root)
    manifest = json_copy(bench.manifest)
    written = []
    for sid in bench.split_ids:
        entry = manifest["splits"][sid]
        items = [(it.img_path, it.mask_path) for it in bench.items(sid, "test")]  # meta certified here
        try:
            rel, digest = write_split(bench.root, entry["meta"], items, bench.files, bench.protocol, workers, quiet)
        except (KeyError, ValueError) as e:
            missing = f"{e} is not listed in 'files'" if isinstance(e, KeyError) else str(e)
            raise BenchmarkError(f"{missing}; check the folder with python -m benchmark.build verify") from None
        old = entry.get("eval_gt")
        if old is not None and old != rel:
            manifest["files"].pop(old, None)
        manifest["files"][rel] = digest
        entry["eval_gt"] = rel
        entry["sha256"] = sha256_of_listing((r, d) for r, d in manifest["files"].items() if owned_by(r, entry))
        written.append(rel)
    manifest["files"] = dict(sorted(manifest["files"].items()))
    atomic_write_json(Path(root) / MANIFEST, manifest)
    return written


def json_copy(obj):
    """A deep copy of parsed JSON (dicts, lists, scalars)."""
    if isinstance(obj, dict):
        return {k: json_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_copy(v) for v in obj]
    return obj
