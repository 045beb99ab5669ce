"""Small file helpers shared by every stage: atomic writes, canonical JSON, hashing.

Every output of the suite is written through :func:`atomic_write_bytes`, so an
interrupted run never leaves a half-written file under its final name, and
rerunning it produces the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of_listing(entries: Iterable[tuple[str, str]]) -> str:
    """sha256 of sha256sum-style lines ``<sha256>  <path>\\n`` sorted by path.

    ``entries`` are ``(relative_path, file_sha256)`` pairs. This is the
    checksum SPEC §3 gives to a split and §4 to a submission.
    """
    lines = "".join(f"{digest}  {path}\n" for path, digest in sorted(entries))
    return sha256_bytes(lines.encode("utf-8"))


def dumps_json(obj: Any, compact: bool = False) -> bytes:
    """Canonical JSON bytes: sorted keys, UTF-8, trailing newline.

    ``compact`` drops indentation (used for large ADer meta files).
    """
    if compact:
        text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=2)
    return (text + "\n").encode("utf-8")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder + rename.

    Parent folders are created. Readers see either the old file or the new one,
    never a partial one; a crash leaves at most a ``.tmp`` file that the next
    atomic write of the same folder does not trip over.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any, compact: bool = False) -> None:
    atomic_write_bytes(path, dumps_json(obj, compact=compact))


def remove_stale_tmp(folder: str | os.PathLike) -> int:
    """Delete ``.*.tmp`` leftovers of an interrupted atomic write below ``folder``."""
    n = 0
    for p in Path(folder).rglob(".*.tmp"):
        if p.is_file() and not p.is_symlink():
            p.unlink()
            n += 1
    return n
