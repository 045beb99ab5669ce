"""``verify``: re-hash every file a benchmark folder's manifest lists.

A file is reported as ``missing`` or ``changed`` (its sha256 differs from the
manifest's); split checksums are recomputed as well, so a manifest edited by
hand is caught too.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.errors import BuildError
from contract.files import sha256_file, sha256_of_listing
from benchmark.folder import MANIFEST
from benchmark.manifest import owned_by


def verify_folder(root: Path) -> tuple[int, list[str]]:
    """(number of files checked, problem lines); BuildError if there is no readable manifest."""
    root = Path(root)
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BuildError(f"{path}: missing; is {root} a benchmark folder? (build one with python -m benchmark.build)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BuildError(f"{path}: not valid JSON ({e}); rebuild the benchmark") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise BuildError(f"{path}: no 'files' listing; rebuild the benchmark")
    problems = []
    for rel in sorted(files):
        p = root / rel
        if not p.is_file():
            problems.append(f"missing: {rel}")
        elif sha256_file(p) != files[rel]:
            problems.append(f"changed: {rel}")
    for sid, entry in sorted((manifest.get("splits") or {}).items()):
        own = [(r, d) for r, d in files.items() if owned_by(r, entry)]
        if entry.get("sha256") != sha256_of_listing(own):
            problems.append(f"split {sid}: checksum in {MANIFEST} does not match its listed files")
    return len(files), problems
