"""contract.files.replace_folder: a crash between its two renames loses nothing (issue 11 #7).

The crash is real: a child process replaces the folder with ``os.replace`` patched to kill the process
(``os._exit``, no cleanup runs) just before it moves the new folder in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from contract.files import recover_folder, replace_folder

REPO = Path(__file__).resolve().parents[2]
CRASH = r"""
import os, sys
from pathlib import Path
real = os.replace
def replace(src, dst):
    if Path(src).name == Path(sys.argv[1]).name:  # moving the new folder in: die first
        os._exit(9)
    real(src, dst)
os.replace = replace
from contract.files import replace_folder
replace_folder(sys.argv[1], sys.argv[2])
"""


def _folder(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "f.txt").write_text(text)
    return path


def _crash(staged: Path, final: Path) -> None:
    r = subprocess.run([sys.executable, "-c", CRASH, str(staged), str(final)], cwd=REPO, capture_output=True)
    assert r.returncode == 9, r.stderr


def test_crash_between_the_renames_is_recovered(tmp_path):
    final = _folder(tmp_path / "out", "old")
    _crash(_folder(tmp_path / "new", "new"), final)
    assert not final.exists()  # the window: the old folder is aside, the new one not yet in
    assert recover_folder(final) is True
    assert (final / "f.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "out"]
    assert recover_folder(final) is False  # nothing left to do


def test_next_replacement_after_a_crash_restores_then_replaces(tmp_path):
    final = _folder(tmp_path / "out", "old")
    _crash(_folder(tmp_path / "new", "new"), final)
    replace_folder(_folder(tmp_path / "newer", "newer"), final)
    assert (final / "f.txt").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "out"]  # the crashed run's staging is its own


def test_replacement_and_recovery_leave_nothing_behind(tmp_path):
    final = _folder(tmp_path / "out", "old")
    replace_folder(_folder(tmp_path / "new", "new"), final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    # a crash after both renames but before the old folder was deleted: the new one stays, the old one goes
    _folder(tmp_path / ".out.previous", "old")
    (tmp_path / ".out.previous.trash-x").mkdir()  # an interrupted deletion
    assert recover_folder(final) is False
    assert (final / "f.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
