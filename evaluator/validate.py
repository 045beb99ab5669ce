"""Validating a submission folder (SPEC §4) against a benchmark folder.

Checks run cheapest first and read no more than they must:

1. ``submission.json``: valid JSON (finite numbers only, bounded nesting),
   follows ``schemas/submission.schema.json``;
2. its benchmark name and version equal the benchmark folder's, its splits
   exist there;
3. the folder listing (no file is opened): no symbolic links or special
   files, no file name that is not UTF-8 or holds control characters,
   exactly one map per test image in ``<split>/maps/``, nothing else there,
   no map folder for a split that ``submission.json`` does not list;
4. each ``scores.csv``: header ``img_path,score``, one finite score per test
   image, no duplicates, no unknown images;
5. each map (only by :func:`validate`; :func:`evaluator.score` checks them
   while it streams): header first, then the body (see :mod:`evaluator.maps`).

A problem is one line, ``<file>: <what is wrong and how to fix it>``. Map
reading stops once ``limit`` problems are known; the cheap checks of steps
1-4 always run to the end, so the count of those is exact.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

from benchmark import Benchmark, BenchmarkError, Item, open_benchmark
from contract.files import loads_json_strict
from evaluator.maps import MAP_SUFFIXES, MapError, load_map, max_pixels_for

MAX_PROBLEMS = 20
"""How many problems are shown (and, for map contents, looked for) before stopping."""
MANIFEST = "submission.json"
SCORES = "scores.csv"
_MAX_MANIFEST_BYTES = 1 << 20
_MAX_SCORES_BYTES = 64 << 20
SCHEMA_PATH = Path(__file__).with_name("schemas") / "submission.schema.json"


class SubmissionError(Exception):
    """A submission that cannot be scored; ``problems`` are one line each.

    ``str()`` gives the first :data:`MAX_PROBLEMS` lines plus a line saying
    how many more there are.
    """

    def __init__(self, problems: list[str], stopped_early: bool = False):
        self.problems = list(problems)
        self.stopped_early = stopped_early
        super().__init__("\n".join(self.lines()))

    def lines(self, limit: int = MAX_PROBLEMS) -> list[str]:
        return format_problems(self.problems, limit, self.stopped_early)


def format_problems(problems: list[str], limit: int = MAX_PROBLEMS, stopped_early: bool = False) -> list[str]:
    """The first ``limit`` problems, then one line saying how many more (if any)."""
    out = list(problems[:limit])
    more = len(problems) - len(out)
    if more:
        out.append(f"... and {more} more problem(s) not shown; fix these and run validate again")
    elif stopped_early:
        out.append(f"... stopped after {limit} problems; fix these and run validate again")
    return out


@dataclass
class Problems:
    """Collects one-line problems, each naming its file (a path under ``root``)."""

    root: Path
    lines: list[str] = field(default_factory=list)

    def add(self, rel: str | None, message: str) -> None:
        where = self.root if rel is None else self.root / rel
        self.lines.append(f"{where}: {' '.join(message.split())}")

    def __len__(self) -> int:
        return len(self.lines)


@dataclass
class Checked:
    """What the cheap checks found: everything scoring needs besides the maps' contents.

    ``maps[split][img_path]`` is the map's path relative to the submission
    folder (POSIX); ``scores[split]`` is ``{img_path: score}`` from
    ``scores.csv`` or ``None``; ``files`` lists every file of the folder
    (relative POSIX paths, sorted) for the checksum, ``sizes`` their sizes in
    bytes when listed.
    """

    root: Path
    benchmark: Benchmark
    manifest: dict
    splits: list[str]
    maps: dict[str, dict[str, str]]
    scores: dict[str, dict[str, float] | None]
    files: list[str]
    sizes: dict[str, int] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _schema_validator():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _short(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def check_manifest(data: bytes, problems: Problems) -> dict | None:
    """Parse and schema-check ``submission.json``; ``None`` if it has problems."""
    try:
        doc = loads_json_strict(data)
    except ValueError as e:
        if str(e) == "not UTF-8 text":
            problems.add(MANIFEST, "not UTF-8 text; write it with evaluator.submission.SubmissionWriter")
        else:
            problems.add(MANIFEST, f"malformed JSON ({e})")
        return None
    errors = sorted(_schema_validator().iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    for err in errors:
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        problems.add(MANIFEST, f"schema violation at {where}: {_short(err.message)}")
    return None if errors else doc


def _walk(root: Path, problems: Problems) -> tuple[list[str], set[str], dict[str, int]]:
    """``(files, links, sizes)``: every regular file below ``root`` (relative POSIX paths, sorted),
    the symbolic links, which are problems (as are special files), and the files' sizes.
    Links are never followed."""
    files: list[str] = []
    sizes: dict[str, int] = {}
    links: set[str] = set()
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = sorted(os.scandir(root / rel_dir), key=lambda e: e.name)
        except OSError as e:
            problems.add(rel_dir or None, f"cannot list folder ({e.strerror})")
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            bad_name = _bad_name(entry.name)
            if bad_name:
                problems.add(printable(rel), f"file name {bad_name}; rename it")
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                mode = st.st_mode
            except OSError as e:
                problems.add(rel, f"cannot stat ({e.strerror})")
                continue
            if stat.S_ISLNK(mode):
                links.add(rel)
                problems.add(rel, "symbolic link; a submission holds real files only (copy the file in)")
            elif stat.S_ISDIR(mode):
                stack.append(rel)
            elif stat.S_ISREG(mode):
                files.append(rel)
                sizes[rel] = st.st_size
            else:
                problems.add(rel, "not a regular file (device, FIFO or socket); remove it")
    return sorted(files), links, sizes


def printable(name: str) -> str:
    """A file name as it can be printed: bytes that are not UTF-8 and control characters escaped."""
    raw = os.fsencode(name)
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


def _bad_name(name: str) -> str | None:
    """Why a file name cannot be part of a submission (its checksum lines and messages), or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "holds control characters"
    return None


def _under_link(key: str, links: set[str]) -> bool:
    """Whether the map ``key`` (path without suffix) is a link or lies below one (reported already)."""
    if any(key + s in links for s in MAP_SUFFIXES):
        return True
    parts = key.split("/")
    return any("/".join(parts[:i]) in links for i in range(1, len(parts)))


def _split_suffix(rel: str) -> tuple[str, str]:
    """(path without its suffix, suffix) as ``PurePosixPath`` has them (``with_suffix("")``, ``suffix``).

    String operations on a normalised relative path: 4,952 names of a COCO-AD
    split cost 0.3 s through pathlib and a few milliseconds here.
    """
    head, sep, name = rel.rpartition("/")
    i = name.rfind(".")
    if 0 < i < len(name) - 1:
        return head + sep + name[:i], name[i:]
    return rel, ""


def _map_key(split: str, img_path: str) -> str | None:
    """``<split>/maps/<img_path without suffix>``, or None if img_path would leave the folder."""
    parts = img_path.split("/")
    if img_path.startswith("/") or ".." in parts:
        return None
    if "" in parts or "." in parts:  # not normalised ("a//b", "./a"): pathlib's reading of it
        p = PurePosixPath(img_path)
        if not p.parts:
            return None
        img_path = str(p)
    return f"{split}/maps/{_split_suffix(img_path)[0]}"


def check_scores_csv(data: bytes, rel: str, expected: set[str], problems: Problems) -> dict[str, float] | None:
    """Parse ``scores.csv`` (header ``img_path,score``); ``None`` if it has problems."""
    n0 = len(problems)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        problems.add(rel, "not UTF-8 text")
        return None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:  # a field over csv's 128 KiB limit, a NUL byte, ...
        problems.add(rel, f"malformed CSV ({_short(str(e), 80)}); one 'img_path,score' row per test image")
        return None
    if not rows:
        problems.add(rel, "empty file; it needs the header 'img_path,score' and one row per test image")
        return None
    if [c.strip() for c in rows[0]] != ["img_path", "score"]:
        problems.add(rel, f"line 1: header must be 'img_path,score', got {_short(','.join(rows[0]), 60)!r}")
        return None
    scores: dict[str, float] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue  # blank line
        if len(row) != 2:
            problems.add(rel, f"line {lineno}: expected 2 fields 'img_path,score', got {len(row)}")
            continue
        key, raw = row[0].strip(), row[1].strip()
        try:
            value = float(raw)
        except ValueError:
            problems.add(rel, f"line {lineno}: score {_short(raw, 40)!r} is not a number")
            continue
        if not math.isfinite(value):
            problems.add(rel, f"line {lineno}: score {raw!r} is not finite")
        elif key not in expected:
            problems.add(rel, f"line {lineno}: {_short(key, 80)!r} is not a test image of this split")
        elif key in scores:
            problems.add(rel, f"line {lineno}: duplicate row for {key!r}")
        else:
            scores[key] = value
    missing = sorted(expected - scores.keys())
    if missing and len(problems) == n0:
        problems.add(rel, f"{len(missing)} test image(s) have no score (first: {missing[0]}); list every test image once")
    return scores if len(problems) == n0 else None


def _read_small(path: Path, rel: str, limit: int, problems: Problems) -> bytes | None:
    try:
        size = os.lstat(path).st_size
        if size > limit:
            problems.add(rel, f"{size} bytes is too large (limit {limit})")
            return None
        with open(path, "rb") as f:
            return f.read(min(size, limit) + 1)
    except OSError as e:
        problems.add(rel, f"cannot read ({e.strerror})")
        return None


def check_structure(submission: str | os.PathLike, benchmark: str | os.PathLike | Benchmark) -> tuple[Checked | None, list[str]]:
    """Steps 1-4 of the module docstring: ``(checked, problems)``.

    ``checked`` is ``None`` when the folder cannot be understood at all
    (no readable ``submission.json``, wrong benchmark).
    """
    root = Path(submission)
    problems = Problems(root)
    if _bad_name(Path(os.path.abspath(root)).name):
        problems.lines.append(f"{printable(str(root))}: folder name {_bad_name(Path(os.path.abspath(root)).name)}; "
                              "rename it (it becomes the result's submission name)")
        return None, problems.lines
    if not root.exists():
        problems.add(None, "no such folder")
        return None, problems.lines
    if not root.is_dir():
        problems.add(None, "not a folder (a submission is a folder holding submission.json and <split>/maps/)")
        return None, problems.lines
    mpath = root / MANIFEST
    if mpath.is_symlink() or (mpath.exists() and not mpath.is_file()):
        problems.add(MANIFEST, "not a regular file; a submission holds real files only")
        return None, problems.lines
    if not mpath.exists():
        problems.add(MANIFEST, "missing; write submissions with evaluator.submission.SubmissionWriter")
        return None, problems.lines
    data = _read_small(mpath, MANIFEST, _MAX_MANIFEST_BYTES, problems)
    doc = check_manifest(data, problems) if data is not None else None
    if doc is None:
        return None, problems.lines

    if not isinstance(benchmark, Benchmark):
        try:
            benchmark = open_benchmark(benchmark)
        except BenchmarkError as e:
            problems.lines.append(str(e))
            return None, problems.lines
    want = (doc["benchmark"]["name"], doc["benchmark"]["version"])
    if want != (benchmark.name, benchmark.version):
        problems.add(
            MANIFEST,
            f"made for benchmark {want[0]!r} version {want[1]!r}, but {benchmark.root} is {benchmark.name!r} "
            f"version {benchmark.version!r}; score it against the benchmark it was made for",
        )
        return None, problems.lines
    splits = []
    for sid in doc["splits"]:
        if sid in benchmark.split_ids:
            splits.append(sid)
        else:
            problems.add(MANIFEST, f"split {sid!r} is not in benchmark {benchmark.root} (it has {', '.join(benchmark.split_ids)})")

    files, links, sizes = _walk(root, problems)
    by_split: dict[str, list[str]] = {}
    for rel in files:
        parts = rel.split("/")
        if len(parts) >= 3 and parts[1] == "maps":
            by_split.setdefault(parts[0], []).append(rel)
    for sid in sorted(set(by_split) - set(doc["splits"])):
        problems.add(f"{sid}/maps", f"map folder of split {sid!r}, which submission.json does not list; remove it or list the split")

    maps: dict[str, dict[str, str]] = {}
    scores: dict[str, dict[str, float] | None] = {}
    for sid in splits:
        try:
            items = benchmark.items(sid, "test")
        except BenchmarkError as e:
            problems.lines.append(str(e))
            continue
        expected: dict[str, Item] = {}
        for it in items:
            key = _map_key(sid, it.img_path)
            if key is None or key in expected:
                problems.lines.append(f"{benchmark.meta_path(sid)}: img_path {it.img_path!r} cannot name a map file; the benchmark is broken")
                continue
            expected[key] = it
        found: dict[str, str] = {}
        for rel in by_split.get(sid, []):
            key, suffix = _split_suffix(rel)  # rel comes from the walk: relative, normalised
            if suffix not in MAP_SUFFIXES:
                problems.add(rel, f"extra file in maps/ (only {', '.join(MAP_SUFFIXES)} maps of test images belong there); remove it")
                continue
            if key not in expected:
                problems.add(rel, f"map for an unknown image (split {sid} has no test image {key.split('/', 2)[2]}.*); remove it")
            elif key in found:
                problems.add(rel, f"second map for test image {expected[key].img_path} (also {found[key]}); keep one")
            else:
                found[key] = rel
        for key in sorted(expected.keys() - found.keys()):
            if _under_link(key, links):
                continue
            problems.add(key + ".npy", f"missing map for test image {expected[key].img_path} (a .npy, .png or .tiff file)")
        maps[sid] = {expected[k].img_path: rel for k, rel in sorted(found.items())}

        scores[sid] = None
        srel = f"{sid}/{SCORES}"
        if srel in files:
            data = _read_small(root / srel, srel, _MAX_SCORES_BYTES, problems)
            if data is not None:
                scores[sid] = check_scores_csv(data, srel, {it.img_path for it in items}, problems)
    checked = Checked(root, benchmark, doc, splits, maps, scores, files, sizes)
    return checked, problems.lines


def check_maps(checked: Checked, problems: list[str], limit: int | None = MAX_PROBLEMS, quiet: bool = True) -> bool:
    """Read every map of ``checked`` (one at a time), appending its problems to ``problems``.

    Returns whether it stopped early because ``limit`` problems were known.
    """
    from tqdm import tqdm

    found = Problems(checked.root, problems)
    todo = [rel for sid in checked.splits for rel in checked.maps[sid].values()]
    max_pixels = max_pixels_for(checked.benchmark.eval_size)
    for rel in tqdm(todo, desc="validate maps", unit="map", disable=True if quiet else None, leave=False):
        if limit is not None and len(found) >= limit:
            return True
        try:
            load_map(checked.root / rel, max_pixels)
        except MapError as e:
            found.add(rel, str(e))
        except OSError as e:
            found.add(rel, f"cannot read ({e.strerror})")
    return False


def validate(
    submission: str | os.PathLike,
    benchmark: str | os.PathLike | Benchmark,
    limit: int | None = MAX_PROBLEMS,
    quiet: bool = True,
) -> list[str]:
    """Every problem of a submission folder, one line each; ``[]`` means valid.

    Map contents are read one file at a time and only until ``limit``
    problems are known (``None``: read them all); see :func:`validate_report`.
    """
    return validate_report(submission, benchmark, limit, quiet)[0]


def validate_report(
    submission: str | os.PathLike,
    benchmark: str | os.PathLike | Benchmark,
    limit: int | None = MAX_PROBLEMS,
    quiet: bool = True,
) -> tuple[list[str], bool]:
    """``(problems, stopped_early)``: as :func:`validate`, plus whether map reading stopped at ``limit``."""
    checked, problems = check_structure(submission, benchmark)
    if checked is None:
        return problems, False
    stopped = check_maps(checked, problems, limit, quiet)
    return problems, stopped
