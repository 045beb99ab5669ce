"""Reading result folders without ever following a symbolic link.

A leaderboard publishes what result folders hold (result JSON, panel PNGs),
and result folders come from strangers: a panel entry that is a link to
``/etc/passwd``, or a folder on its path that is one, would publish that file.
So below the folder the operator names, nothing is read through a link:

- :func:`walk_json` lists ``*.json`` files without descending into linked
  folders and reports linked entries instead of using them;
- :func:`read_below` opens a file by walking its path one component at a
  time from an open folder, each with ``O_NOFOLLOW`` (the check and the open
  are the same system call, so a link swapped in meanwhile is refused too),
  and reads it only if it is a regular file within a size limit.

The folder the operator names on the command line may itself be a link
(that is the operator's choice); nothing below it may.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_DIR_FD = os.open in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")


class LinkError(OSError):
    """A path component below the root is a symbolic link (or not what it must be)."""


def _parts(rel: str) -> list[str]:
    pp = PurePosixPath(rel)
    parts = list(pp.parts)
    if not parts or pp.is_absolute() or any(p in ("", ".", "..") for p in parts) or "\\" in rel:
        raise LinkError(errno.EINVAL, "not a plain relative path", rel)
    return parts


def _open_fd(root: Path, rel: str) -> int:
    """A read-only descriptor of ``root/rel`` opened without following any link below ``root``."""
    parts = _parts(rel)
    if not _DIR_FD:  # no openat(): check each component with lstat (racy, but no link is followed knowingly)
        p = Path(root)
        for i, part in enumerate(parts):
            p = p / part
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                raise LinkError(errno.ELOOP, "is a symbolic link", str(p))
            if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
                raise LinkError(errno.ENOTDIR, "is not a folder", str(p))
        return os.open(p, os.O_RDONLY)
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        where = Path(root)
        for part in parts[:-1]:
            where = where / part
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                raise _explain(e, fd, part, where) from None
            os.close(fd)
            fd = nfd
        try:
            return os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
        except OSError as e:
            raise _explain(e, fd, parts[-1], where / parts[-1]) from None
    finally:
        os.close(fd)


def _explain(e: OSError, dir_fd: int, name: str, where: Path) -> OSError:
    """ELOOP (and ENOTDIR for a linked folder) as a :class:`LinkError` naming the link."""
    if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        try:
            if stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
                return LinkError(errno.ELOOP, "is a symbolic link", str(where))
        except OSError:
            pass
    if e.filename is None:
        e.filename = str(where)
    return e


def read_below(root: Path, rel: str, limit: int) -> bytes:
    """The bytes of the regular file ``root/rel`` (at most ``limit`` of them), no link followed below ``root``.

    Raises :class:`LinkError` for a link on the path, ``OSError`` for a missing
    or unreadable file, ``ValueError`` for something that is not a regular
    file or is larger than ``limit`` bytes.
    """
    fd = _open_fd(Path(root), rel)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("is not a regular file")
        if st.st_size > limit:
            raise ValueError(f"is {st.st_size:,} bytes, more than the {limit:,} allowed")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"is more than the {limit:,} bytes allowed")
    return data


def _plain(name: str) -> bool:
    """A file name that can be shown and written back: UTF-8 (no surrogate escapes), no control characters."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name)


def walk_json(root: Path, note: Callable[[str], None]) -> Iterator[str]:
    """Relative POSIX paths of the ``*.json`` files below ``root``, sorted per folder, links never followed.

    Hidden entries (editor swap files, atomic-write leftovers) are passed over
    silently; linked files and folders, and names that are not plain UTF-8
    text, are passed over with a ``note``.
    """
    def walk(folder: Path, prefix: str) -> Iterator[str]:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            note(f"{folder}: skipped, cannot list it ({e.strerror or e})")
            return
        for e in entries:
            if e.name.startswith("."):
                continue
            if not _plain(e.name):
                note(f"{Path(folder, e.name)!r}: skipped, its name is not plain UTF-8 text")
                continue
            rel = f"{prefix}{e.name}"
            if e.is_symlink():
                if e.name.endswith(".json") or e.is_dir():
                    note(f"{Path(folder, e.name)}: skipped, a symbolic link (results are never read through links)")
                continue
            if e.is_dir(follow_symlinks=False):
                yield from walk(Path(folder, e.name), rel + "/")
            elif e.name.endswith(".json") and e.is_file(follow_symlinks=False):
                yield rel

    yield from walk(Path(root), "")
