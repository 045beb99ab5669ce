"""File helpers shared by every stage: atomic writes, canonical JSON, SPEC checksums.

Every output of the suite is written through :func:`atomic_write_bytes`, so an
interrupted run never leaves a half-written file under its final name, and
rerunning it produces the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

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


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, fsync: bool = False) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; rename it to ``path`` on success.

    Parent folders are created. Readers see either the old file or the new one,
    never a partial one; on an exception the temporary file is removed, and a
    crash leaves at most a ``.<name>.*.tmp`` file (see :func:`remove_stale_tmp`).
    ``fsync`` flushes the data to disk before the rename (for large files whose
    loss would cost hours, such as checkpoints).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder + rename)."""
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any, compact: bool = False) -> None:
    atomic_write_bytes(path, dumps_json(obj, compact=compact))


def replace_folder(staged: str | os.PathLike, final: str | os.PathLike) -> None:
    """Put the finished folder ``staged`` at ``final`` by renames, replacing any old one.

    The old folder is moved aside first and deleted only once ``staged`` is in
    place; if that rename fails, the old folder is put back. Readers see the
    old folder or the new one, never a mixture.
    """
    staged, final = Path(staged), Path(final)
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", suffix=".tmp", dir=final.parent))
        old.rmdir()
        os.replace(final, old)
    try:
        os.replace(staged, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_stale_tmp(folder: str | os.PathLike) -> int:
    """Delete ``.*.tmp`` leftovers of an interrupted atomic write below ``folder``."""
    n = 0
    for p in Path(folder).rglob(".*.tmp"):
        if p.is_file() and not p.is_symlink():
            p.unlink()
            n += 1
    return n


_TMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]+\.tmp")


def remove_tmp_leftovers(folder: str | os.PathLike, names: Iterable[str]) -> int:
    """Delete the leftovers of interrupted :func:`atomic_open` writes of exactly ``names``.

    ``names`` are file names in ``folder``; a leftover of ``name`` is the
    regular file ``.<name>.<random>.tmp`` (as :func:`atomic_open` names it).
    Any other file, whatever its name, is left alone. Returns how many were
    deleted.
    """
    names = set(names)
    n = 0
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for e in entries:
        m = _TMP_NAME.fullmatch(e.name)
        if m and m.group("name") in names and e.is_file(follow_symlinks=False):
            os.unlink(e.path)
            n += 1
    return n
