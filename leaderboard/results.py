"""Reading evaluator result files (SPEC §5) and checking them up front.

A result file is the JSON that ``python -m evaluator score --out FILE`` writes.
Everything the leaderboard shows comes from these files (never from logs), so
each one is checked before any output is written: when the evaluator ships
``evaluator/schemas/result.schema.json`` it is validated against that schema
with jsonschema, and in every case the keys the leaderboard reads are checked
here, so that a bad file is rejected with one line naming it instead of a
traceback halfway through a build.

Inputs (:func:`read_results`) are result files and folders. A folder is
searched recursively for ``*.json``; a JSON file there that is not an
evaluator result at all (no top-level ``evaluator`` key: a ``submission.json``,
a ``benchmark.json``, a config) is skipped with a one-line note, while a file
that claims to be a result and is malformed stops the build. Nothing below
a named folder is read through a symbolic link (:mod:`leaderboard.nofollow`).

Hostile JSON is refused with one line: nesting deeper than
:data:`MAX_DEPTH`, integer literals longer than :data:`MAX_INT_DIGITS`
digits, numbers that overflow to infinity, ``NaN`` / ``Infinity`` literals,
files over :data:`MAX_RESULT_BYTES`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

from contract.files import JSONSyntaxError, loads_json_strict
from contract.names import METRIC_NAMES as METRICS  # the eleven metrics, in the paper's column order
from contract.names import sort_split_ids  # noqa: F401  (re-exported: results are listed in this order)
from leaderboard.nofollow import LinkError, read_below, walk_json
from leaderboard.text import clean

#: Curves a result may carry per split for the threshold-sweep plots.
SWEEP_CURVES = ("F1", "IoU", "recall")

#: Split ids as the result schema allows them (CONTRACTS.md); they end up in page ids and file names.
SPLIT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Limits on what a result file may be (a real one is a few hundred KB, nested 6 deep).
MAX_RESULT_BYTES = 64 << 20
MAX_PANEL_BYTES = 32 << 20
MAX_DEPTH = 32
MAX_INT_DIGITS = 30

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SCORE_HINT = "write it with `python -m evaluator score SUBMISSION --benchmark DIR --out FILE`"


class ResultError(Exception):
    """A result file the leaderboard cannot use; the message is one line for the user."""


@dataclass(frozen=True)
class Result:
    """One checked result file.

    ``root`` is the folder it was found in (for a file named directly: its
    folder) and ``rel`` its path below ``root``; ``key`` names it on the page
    and places its copied panels (``rel``, prefixed when several inputs are
    given, see :func:`read_results`).
    """

    path: Path
    root: Path
    rel: str
    key: str
    data: dict

    @property
    def benchmark(self) -> str:
        return self.data["benchmark"]["name"]

    @property
    def benchmark_version(self) -> str:
        return self.data["benchmark"]["version"]

    @property
    def benchmark_sha256(self) -> str:
        return self.data["benchmark"]["sha256"]

    @property
    def benchmark_split_ids(self) -> list[str] | None:
        """Every split of the benchmark, when the result records them (newer evaluators)."""
        ids = self.data["benchmark"].get("split_ids")
        return sort_split_ids(ids) if ids is not None else None

    @property
    def masks(self) -> str | None:
        return self.data["benchmark"].get("masks")

    @property
    def profile(self) -> str:
        return self.data["evaluator"]["profile"]

    @property
    def pool(self) -> int | None:
        return self.data["evaluator"].get("pool")

    @property
    def aupro_steps(self) -> int | None:
        return self.data["evaluator"].get("aupro_steps")

    @property
    def ground_truth(self) -> str | None:
        return self.data["evaluator"].get("ground_truth")

    @property
    def evaluator_version(self) -> str:
        return self.data["evaluator"]["version"]

    @property
    def method(self) -> dict:
        return self.data["submission"]["method"]

    @property
    def split_ids(self) -> list[str]:
        """The splits this result scored, in natural order."""
        return sort_split_ids(self.data["splits"])

    @property
    def complete(self) -> bool | None:
        """True / False when the result says whether it covers every split of its benchmark, else None.

        Older results carry neither ``complete`` nor ``benchmark.split_ids``:
        unknown (the table infers partial results from the other results of
        the same benchmark build).
        """
        c = self.data.get("complete")
        if isinstance(c, bool):
            return c
        ids = self.benchmark_split_ids
        return None if ids is None else set(ids) <= set(self.data["splits"])

    @property
    def panels(self) -> list[dict]:
        return list(self.data.get("panels") or [])

    @property
    def sweeps(self) -> dict:
        return dict(self.data.get("sweeps") or {})


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_fraction_or_null(v: Any) -> bool:
    return v is None or (_is_number(v) and 0.0 <= v <= 1.0)


def _is_count(v: Any, minimum: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


class _Problem(Exception):
    pass


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise _Problem(msg)


def _need_str(block: dict, key: str, where: str, hexdigest: bool = False) -> None:
    v = block.get(key)
    _need(isinstance(v, str) and v != "", f"{where}.{key} must be a non-empty string")
    if hexdigest:
        _need(bool(_HEX64.match(v)), f"{where}.{key} must be a 64-digit lowercase hex sha256")


def _check_metrics(block: Any, where: str) -> None:
    _need(isinstance(block, dict), f"{where} must be an object")
    for m in METRICS:
        _need(m in block, f"{where} lacks metric {m!r}")
        _need(_is_fraction_or_null(block[m]), f"{where}.{m} must be a fraction in [0, 1] or null, got {block[m]!r}")


def _check_relpath(p: Any, where: str) -> None:
    _need(isinstance(p, str) and p != "", f"{where} must be a non-empty relative path")
    _need(len(p) <= 1000 and p.isprintable() and not any(0xD800 <= ord(c) <= 0xDFFF for c in p),
          f"{where} must be printable text of at most 1,000 characters")
    pp = PurePosixPath(p)
    _need(not pp.is_absolute() and "\\" not in p and ".." not in pp.parts and "" not in p.split("/"),
          f"{where} {p!r} must be a relative path inside the results folder")


def _check_optional(obj: dict) -> None:
    """The fields newer evaluators add (CONTRACTS.md); results without them stay valid."""
    ev, bm = obj["evaluator"], obj["benchmark"]
    if "complete" in obj:
        _need(isinstance(obj["complete"], bool), "complete must be true or false")
    if "split_ids" in bm:
        ids = bm["split_ids"]
        _need(isinstance(ids, list) and len(ids) > 0 and all(isinstance(s, str) and SPLIT_ID.match(s) for s in ids),
              "benchmark.split_ids must be a non-empty list of split ids")
        _need(set(obj["splits"]) <= set(ids), "splits names a split that is not in benchmark.split_ids")
    for block, key, where in ((bm, "masks", "benchmark"), (ev, "ground_truth", "evaluator")):
        if block.get(key) is not None:
            _need_str(block, key, where)
    steps = ev.get("aupro_steps")
    _need(steps is None or _is_count(steps, 1), "evaluator.aupro_steps must be a positive integer or null")


def check_result(obj: Any) -> None:
    """Raise ``_Problem`` with a short message if ``obj`` is not a usable result."""
    _need(isinstance(obj, dict), "the top level must be a JSON object")
    for key in ("evaluator", "benchmark", "submission", "splits", "mean", "seconds"):
        _need(key in obj, f"missing key {key!r}")

    ev = obj["evaluator"]
    _need(isinstance(ev, dict), "evaluator must be an object")
    _need_str(ev, "version", "evaluator")
    _need_str(ev, "profile", "evaluator")
    pool = ev.get("pool")
    _need(pool is None or _is_count(pool, 1), "evaluator.pool must be a positive integer or null")

    bm = obj["benchmark"]
    _need(isinstance(bm, dict), "benchmark must be an object")
    _need_str(bm, "name", "benchmark")
    _need_str(bm, "version", "benchmark")
    _need_str(bm, "sha256", "benchmark", hexdigest=True)

    sub = obj["submission"]
    _need(isinstance(sub, dict), "submission must be an object")
    _need_str(sub, "name", "submission")
    _need_str(sub, "sha256", "submission", hexdigest=True)
    method = sub.get("method")
    _need(isinstance(method, dict), "submission.method must be an object")
    _need_str(method, "name", "submission.method")
    for key in ("paper", "code", "preset", "backbone"):
        _need(method.get(key) is None or isinstance(method[key], str), f"submission.method.{key} must be a string")
    _need(method.get("published") is None or isinstance(method["published"], bool),
          "submission.method.published must be true or false")
    _need(method.get("params_m") is None or (_is_number(method["params_m"]) and method["params_m"] >= 0),
          "submission.method.params_m must be a non-negative number")

    splits = obj["splits"]
    _need(isinstance(splits, dict) and len(splits) > 0, "splits must be a non-empty object")
    for sid, block in splits.items():
        where = f"splits[{sid!r}]"
        _need(bool(SPLIT_ID.match(sid)), f"{where}: a split id is 1-64 letters, digits, '.', '_' or '-'")
        _check_metrics(block, where)
        for key in ("n_images", "n_anomalous"):
            _need(_is_count(block.get(key)), f"{where}.{key} must be a count")
        classes = block.get("classes", {})
        _need(isinstance(classes, dict), f"{where}.classes must be an object")
        for cls, cblock in classes.items():
            _check_metrics(cblock, f"{where}.classes[{cls!r}]")
    _check_metrics(obj["mean"], "mean")
    _need(_is_number(obj["seconds"]) and obj["seconds"] >= 0, "seconds must be a non-negative number")
    _check_optional(obj)

    warnings = obj.get("warnings", [])
    _need(isinstance(warnings, list) and all(isinstance(w, str) for w in warnings),
          "warnings must be a list of strings")

    sweeps = obj.get("sweeps") or {}
    _need(isinstance(sweeps, dict), "sweeps must be an object")
    for sid, sw in sweeps.items():
        where = f"sweeps[{sid!r}]"
        _need(sid in splits, f"{where} names a split that is not in splits")
        _need(isinstance(sw, dict), f"{where} must be an object")
        t = sw.get("thresholds")
        _need(isinstance(t, list) and len(t) > 0 and all(_is_number(x) for x in t),
              f"{where}.thresholds must be a non-empty list of numbers")
        for curve in SWEEP_CURVES:
            c = sw.get(curve)
            _need(isinstance(c, list) and len(c) == len(t), f"{where}.{curve} must be a list as long as thresholds")
            _need(all(_is_fraction_or_null(x) for x in c), f"{where}.{curve} must hold fractions in [0, 1] or null")

    panels = obj.get("panels") or []
    _need(isinstance(panels, list), "panels must be a list")
    for i, p in enumerate(panels):
        where = f"panels[{i}]"
        _need(isinstance(p, dict), f"{where} must be an object")
        _need(isinstance(p.get("split"), str) and p["split"] in splits, f"{where}.split must name a split of the result")
        _need(isinstance(p.get("img_path"), str), f"{where}.img_path must be a string")
        _check_relpath(p.get("file"), f"{where}.file")
        _need(p["file"].lower().endswith(".png"), f"{where}.file must be a .png file")


def _result_schema_path() -> Path | None:
    """The evaluator's published result schema, if the evaluator ships one.

    Located without importing the evaluator package (its import may be heavy).
    """
    spec = importlib.util.find_spec("evaluator")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "schemas" / "result.schema.json"
        if p.is_file():
            return p
    return None


_SCHEMA_CACHE: dict[Path, Any] = {}


def _schema_validator():
    path = _result_schema_path()
    if path is None:
        return None
    if path not in _SCHEMA_CACHE:
        import jsonschema

        schema = json.loads(path.read_text(encoding="utf-8"))
        cls = jsonschema.validators.validator_for(schema)
        _SCHEMA_CACHE[path] = cls(schema)
    return _SCHEMA_CACHE[path]


def parse_json(data: bytes) -> Any:
    """Parse hostile JSON bytes; raise ``_Problem`` (one line) for anything unreasonable."""
    try:
        return loads_json_strict(data, max_depth=MAX_DEPTH, max_int_digits=MAX_INT_DIGITS)
    except JSONSyntaxError as e:
        raise _Problem(f"not JSON ({e})") from None
    except ValueError as e:
        raise _Problem(str(e)) from None


def _read(root: Path, rel: str, path: Path, limit: int, what: str) -> bytes:
    try:
        return read_below(root, rel, limit)
    except LinkError:
        raise ResultError(f"{path}: {what} is a symbolic link or lies behind one; the leaderboard never reads "
                          f"through links (copy the real file there)") from None
    except ValueError as e:
        raise ResultError(f"{path}: {what} {e}") from None
    except OSError as e:
        raise ResultError(f"{path}: cannot read {what} ({e.strerror or e})") from None


def looks_like_result(obj: Any) -> bool:
    """Whether parsed JSON claims to be an evaluator result (a top-level ``evaluator`` key)."""
    return isinstance(obj, dict) and "evaluator" in obj


def load_result(root: Path, rel: str, key: str | None = None, obj: Any = None) -> Result:
    """Read (unless ``obj`` is given) and check ``root/rel``; raise :class:`ResultError` with one line if unusable."""
    root = Path(root)
    path = root / rel
    if obj is None:
        try:
            obj = parse_json(_read(root, rel, path, MAX_RESULT_BYTES, "the result file"))
        except _Problem as e:
            raise ResultError(f"{path}: not a result file: {e}; {_SCORE_HINT}") from None
    validator = _schema_validator()
    if validator is not None:
        err = next(iter(sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])), None)
        if err is not None:
            # the message quotes the file's own strings: no control character reaches the terminal
            where = clean("/".join(str(p) for p in err.absolute_path) or "(top level)")
            msg = clean(err.message)
            if len(msg) > 200:
                msg = msg[:200] + "…"
            raise ResultError(f"{path}: not a valid result (result.schema.json, at {where[:200]}: {msg}); "
                              f"{_SCORE_HINT}")
    try:
        check_result(obj)
    except _Problem as e:
        raise ResultError(f"{path}: not a valid result: {e}; {_SCORE_HINT}") from None
    folder = PurePosixPath(rel).parent
    for i, p in enumerate(obj.get("panels") or []):
        what = f"panels[{i}] ({p['file']!r})"
        data = _read(root, (folder / p["file"]).as_posix(), path, MAX_PANEL_BYTES, what)
        if not data.startswith(PNG_SIGNATURE):
            raise ResultError(f"{path}: {what} is not a PNG file; rescore with --panels N")
    return Result(path=path, root=root, rel=rel, key=key or rel, data=obj)


def read_panel(res: Result, panel: dict) -> bytes:
    """The bytes of one of ``res``'s panels, read as :func:`load_result` checked it (no link followed)."""
    rel = (PurePosixPath(res.rel).parent / panel["file"]).as_posix()
    return _read(res.root, rel, res.path, MAX_PANEL_BYTES, f"panel {panel['file']!r}")


def _inputs(paths: Iterable) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out = [Path(p) for p in paths]
    if not out:
        raise ResultError("no results given; pass --results DIR or FILE (the output of "
                          "`python -m evaluator score --out FILE`)")
    return out


def read_results(paths, note: Callable[[str], None] | None = None) -> list[Result]:
    """Every result below the folders and files of ``paths``, each checked; sorted by key.

    A file named directly must be a result. A folder is searched
    recursively; JSON files there that are not results are skipped with a
    ``note`` (one line each), and so are symbolic links. With several inputs,
    each result's key starts with its input's name (``results/a.json``), so
    that two ``a.json`` stay apart. The same file given twice is read once.
    """
    note = note or (lambda line: None)
    inputs = _inputs(paths)
    found: list[tuple[str, Path, str, Any]] = []  # (key, root, rel, parsed object or None)
    seen: set[Path] = set()
    labels: dict[str, int] = {}

    def label_for(p: Path) -> str:
        name = p.name or "results"
        labels[name] = labels.get(name, 0) + 1
        return name if labels[name] == 1 else f"{name}-{labels[name]}"

    for p in inputs:
        if p.is_file() or (p.is_symlink() and not p.is_dir()):
            if p.is_symlink():
                raise ResultError(f"{p}: is a symbolic link; the leaderboard never reads results through links "
                                  f"(name the real file)")
            real = p.resolve()
            if real in seen:
                continue
            seen.add(real)
            prefix = label_for(p.parent) + "/" if len(inputs) > 1 else ""
            found.append((prefix + p.name, p.parent, p.name, None))
        elif p.is_dir():
            prefix = label_for(p) + "/" if len(inputs) > 1 else ""
            n_before = len(found)
            for rel in walk_json(p, note):
                real = (p / rel).resolve()
                if real in seen:
                    continue
                seen.add(real)
                path = p / rel
                try:
                    obj = parse_json(read_below(p, rel, MAX_RESULT_BYTES))
                except (_Problem, ValueError, OSError) as e:
                    note(f"{path}: skipped, not an evaluator result ({_short(e)})")
                    continue
                if not looks_like_result(obj):
                    note(f"{path}: skipped, not an evaluator result (no 'evaluator' key)")
                    continue
                found.append((prefix + rel, p, rel, obj))
            if len(found) == n_before:
                raise ResultError(f"{p}: holds no evaluator result files; score a submission with "
                                  f"`python -m evaluator score SUB --benchmark DIR --out {p}/NAME.json`")
        else:
            raise ResultError(f"{p}: no such results folder or file; pass --results DIR or FILE (the output of "
                              f"`python -m evaluator score --out DIR/NAME.json`)")
    found.sort(key=lambda f: f[0])
    return [load_result(root, rel, key=key, obj=obj) for key, root, rel, obj in found]


def _short(e: Exception) -> str:
    if isinstance(e, LinkError):
        return "a symbolic link on its path"
    if isinstance(e, OSError):
        return f"cannot read it: {e.strerror or e}"
    return str(e)

