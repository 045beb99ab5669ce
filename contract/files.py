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


def _previous(final: Path) -> Path:
    """Where :func:`replace_folder` keeps the old folder between its two renames."""
    return final.with_name(f".{final.name}.previous")


def _discard(folder: Path) -> None:
    """Delete ``folder``, first renaming it to a unique ``.<name>.trash-*`` name.

    The rename is atomic: if the deletion is interrupted, what is left has a
    name that :func:`recover_folder` deletes and never restores.
    """
    trash = Path(tempfile.mkdtemp(prefix=f".{folder.name.lstrip('.')}.trash-", dir=folder.parent))
    trash.rmdir()
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def recover_folder(final: str | os.PathLike) -> bool:
    """Finish what an interrupted :func:`replace_folder` on ``final`` left; True if it restored the old folder.

    A crash between the two renames leaves no ``final`` and the last complete
    folder under ``.<name>.previous``: it is renamed back. A crash after them
    leaves ``final`` (complete) and ``.<name>.previous`` (the replaced one),
    which is deleted. Leftovers of an interrupted deletion (``.<name>.previous.trash-*``)
    are deleted. Nothing else is touched.
    """
    final = Path(final)
    prev = _previous(final)
    restored = False
    if os.path.lexists(prev):
        if os.path.lexists(final):
            _discard(prev)
        else:
            os.replace(prev, final)
            restored = True
    trash_prefix = f"{prev.name.lstrip('.')}.trash-"
    if final.parent.is_dir():
        with os.scandir(final.parent) as it:
            leftovers = [e.path for e in it if e.name.startswith("." + trash_prefix)]
        for p in leftovers:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
    return restored


def replace_folder(staged: str | os.PathLike, final: str | os.PathLike) -> None:
    """Put the finished folder ``staged`` at ``final`` by renames, replacing any old one.

    The old folder is renamed to ``.<name>.previous`` first and deleted only
    once ``staged`` is in place; if that rename fails, the old folder is put
    back. Readers see the old folder or the new one, never a mixture. A crash
    between the two renames loses nothing: the next call (or
    :func:`recover_folder`) renames ``.<name>.previous`` back, it never
    deletes the last complete folder.
    """
    staged, final = Path(staged), Path(final)
    recover_folder(final)
    prev = _previous(final)
    had_old = os.path.lexists(final)
    if had_old:
        os.replace(final, prev)
    try:
        os.replace(staged, final)
    except BaseException:
        if had_old:
            os.replace(prev, final)
        raise
    if had_old:
        _discard(prev)


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


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows; numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(f"number {shown} is out of range; numbers must be finite")
    return value


class JSONSyntaxError(ValueError):
    """Bytes that are not JSON at all (as opposed to JSON that the checks refuse)."""


def json_depth(obj: Any, stop: int | None = None) -> int:
    """Nesting depth of parsed JSON (a scalar is 1), computed without recursion; stops
    counting once it exceeds ``stop``."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        deepest = max(deepest, d)
        if stop is not None and d > stop:
            break
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return deepest


def loads_json_strict(data: bytes, max_depth: int | None = None, max_int_digits: int | None = None) -> Any:
    """``json.loads`` for untrusted files: ValueError whose message is the reason in a few
    words (the caller names the file) for bad UTF-8 or JSON, NaN / Infinity or out-of-range
    numbers, integers over Python's 4300 digits, or nesting too deep (``RecursionError``).

    ``max_depth`` / ``max_int_digits`` tighten the last two for files whose shape is
    known (a result is a few levels deep and holds no long integer).
    """
    parse_int = None
    if max_int_digits is not None:
        def parse_int(text: str) -> int:
            digits = len(text.lstrip("-"))
            if digits > max_int_digits:
                raise ValueError(f"an integer literal has {digits:,} digits (at most {max_int_digits})")
            return int(text)
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float,
                         parse_int=parse_int)
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise JSONSyntaxError(f"line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise ValueError("nested too deeply" + (f" (at most {max_depth} levels)" if max_depth else "")) from None
    except ValueError as e:  # the checks above, Python's limit on integer digits
        text = " ".join(str(e).split())
        raise ValueError(text if len(text) <= 120 else text[:117] + "...") from None
    if max_depth is not None and json_depth(obj, max_depth) > max_depth:
        raise ValueError(f"nested too deeply (at most {max_depth} levels)")
    return obj
