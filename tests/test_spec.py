"""The project's own specification (SPEC.md) exists and every "SPEC §N" citation resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "SPEC.md"
_CITE = re.compile(r"SPEC(?:\.md)?\s*(?:§|section\s+)(\d+(?:\.\d+)*)")
_HEADING = re.compile(r"^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s+\S", re.M)
_SOURCES = ("*.py", "*.json", "*.md", "*.cfg", "*.toml")


def _sections() -> set[str]:
    return set(_HEADING.findall(SPEC.read_text(encoding="utf-8")))


def _citations() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for pattern in _SOURCES:
        for path in ROOT.rglob(pattern):
            rel = path.relative_to(ROOT)
            if rel.parts[0] in {".git", "runs", "artifacts", "build", "dist"} or path == SPEC:
                continue
            if any(part.startswith(".") or part.endswith(".egg-info") for part in rel.parts):
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                for sec in _CITE.findall(line):
                    found.setdefault(sec, []).append(f"{rel}:{n}")
    return found


def test_spec_is_in_the_repository_and_numbered():
    assert SPEC.is_file(), "SPEC.md (the project's specification) is missing"
    secs = _sections()
    for top in map(str, range(1, 8)):
        assert top in secs, f"SPEC.md has no section {top}"


def test_every_spec_citation_resolves():
    secs = _sections()
    cites = _citations()
    assert cites, "no SPEC § citation found at all: the scan is broken"
    missing = {sec: where[:3] for sec, where in cites.items() if sec not in secs}
    assert not missing, f"SPEC sections cited but not in SPEC.md: {missing}"


def test_citation_pattern_catches_both_spellings():
    assert _CITE.findall("see SPEC §3 and SPEC section 5.2, SPEC.md §4") == ["3", "5.2", "4"]
