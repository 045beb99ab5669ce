"""Writing a result file and its panels folder as one unit, safe against crashes and races.

A result lists its panels (``<stem>_panels/``), so the two must change
together. A run stages both under names of its own (a unique staging folder
``.<stem>_panels.<pid>-<token>.tmp`` and ``.<result name>.<token>.tmp``), then
commits, holding an exclusive lock on the output folder (``flock``), so that of
two runs writing the same ``--out`` the last one wins whole:

1. a journal ``.<result name>.commit`` names the staged result, the staged
   panels and the name the old panels are moved aside to;
2. old panels aside, staged panels into place, staged result into place;
3. the old panels and the journal are deleted.

A crash anywhere in step 2 or 3 leaves the journal; the next run writing that
result (or :func:`recover`) rolls the commit forward from it, so the last
complete output — the staged pair, fully written before the journal — ends up
in place and the previous pair is deleted only after that. A crash before the
journal leaves the previous pair untouched; its staging leftovers are removed
once their process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path

from contract.files import atomic_write_bytes


def panels_folder(out: Path) -> Path:
    """Where the panels of result file ``out`` live: ``<out stem>_panels/`` beside it."""
    out = Path(out)
    return out.parent / f"{out.stem}_panels"


def _journal(out: Path) -> Path:
    return out.parent / f".{out.name}.commit"


@contextlib.contextmanager
def _locked(folder: Path):
    """An exclusive ``flock`` on the folder itself (POSIX), released on exit; no lock file is left."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (runs writing one --out at once are then unsupported)
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def new_staging(out: Path) -> Path:
    """A fresh, unique staging folder for the panels of ``out`` (created, empty)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f".{panels_folder(out).name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    path.mkdir()
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _remove_dead_staging(out: Path) -> None:
    """Staging leftovers of runs that died before committing (their process is gone)."""
    prefixes = (f".{panels_folder(out).name}.", f".{out.name}.")
    for p in out.parent.iterdir():
        name = p.name
        if not name.endswith(".tmp") or not name.startswith(prefixes) or p.is_symlink():
            continue
        tag = name[len(next(x for x in prefixes if name.startswith(x))):-len(".tmp")]
        pid = tag.split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def _roll_forward(out: Path, journal: dict) -> None:
    """Finish a commit described by ``journal``; idempotent, so a crash inside it is harmless."""
    parent = out.parent
    final = panels_folder(out)
    old = parent / journal["old"] if journal.get("old") else None
    if journal.get("panels"):
        staged = parent / journal["panels"]
        if staged.is_dir():  # the panels are not in place yet
            if old is not None and final.exists() and not old.exists():
                os.replace(final, old)
            os.replace(staged, final)
    result = parent / journal["result"]
    if result.is_file():
        os.replace(result, out)
    if old is not None and old.exists():
        shutil.rmtree(old)
    _journal(out).unlink(missing_ok=True)


def _read_journal(out: Path) -> dict | None:
    try:
        doc = json.loads(_journal(out).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        doc = None
    # Only names this module gives its own staging: nothing else of the folder can be moved.
    prefixes = {"result": f".{out.name}.", "panels": f".{panels_folder(out).name}.", "old": f".{panels_folder(out).name}."}
    ok = isinstance(doc, dict) and isinstance(doc.get("result"), str) and all(
        doc.get(k) is None or (isinstance(doc[k], str) and "/" not in doc[k] and "\x00" not in doc[k]
                               and doc[k].startswith(prefixes[k]) and doc[k].endswith(".tmp"))
        for k in prefixes)
    if not ok:
        raise OSError(f"{_journal(out)}: unreadable commit journal; remove it (the result beside it is the last "
                      "one fully written)")
    return doc


def recover(out: str | os.PathLike) -> bool:
    """Complete an interrupted commit of result file ``out``, if any; returns whether there was one."""
    out = Path(out)
    if not out.parent.is_dir():
        return False
    with _locked(out.parent):
        return _recover_locked(out)


def _recover_locked(out: Path) -> bool:
    journal = _read_journal(out)
    if journal is not None:
        _roll_forward(out, journal)
    _remove_dead_staging(out)
    return journal is not None


def commit(out: str | os.PathLike, result: bytes, staged_panels: Path | None = None) -> None:
    """Put ``result`` (the file's bytes) at ``out`` and, if given, the finished folder
    ``staged_panels`` (from :func:`new_staging`) at ``<out stem>_panels``, as one unit."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out.parent):
        _recover_locked(out)
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        staged_result = out.parent / f".{out.name}.{token}.tmp"
        atomic_write_bytes(staged_result, result)
        journal = {"result": staged_result.name, "panels": None, "old": None}
        if staged_panels is not None:
            journal["panels"] = Path(staged_panels).name
            if panels_folder(out).exists():
                journal["old"] = f".{panels_folder(out).name}.old-{token}.tmp"
        atomic_write_bytes(_journal(out), json.dumps(journal).encode())
        _roll_forward(out, journal)
