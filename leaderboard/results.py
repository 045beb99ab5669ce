"""Reading evaluator result files (SPEC §5) and checking them up front.

A result file is the JSON that ``python -m evaluator score --out FILE`` writes.
Everything the leaderboard shows comes from these files (never from logs), so
each one is checked before any output is written: when the evaluator ships
``evaluator/schemas/result.schema.json`` it is validated against that schema
with jsonschema, and in every case the keys the leaderboard reads are checked
here, so that a bad file is rejected with one line naming it instead of a
traceback halfway through a build.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from contract.names import METRIC_NAMES as METRICS  # the eleven metrics, in the paper's column order
from contract.names import sort_split_ids  # noqa: F401  (re-exported: results are listed in this order)

#: Curves a result may carry per split for the threshold-sweep plots.
SWEEP_CURVES = ("F1", "IoU", "recall")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SCORE_HINT = "write it with `python -m evaluator score SUBMISSION --benchmark DIR --out FILE`"


class ResultError(Exception):
    """A result file the leaderboard cannot use; the message is one line for the user."""


@dataclass(frozen=True)
class Result:
    """One checked result file.

    ``rel`` is its path relative to the results folder (POSIX separators),
    used to name it on the page and to place its copied panels.
    """

    path: Path
    rel: str
    data: dict

    @property
    def benchmark(self) -> str:
        return self.data["benchmark"]["name"]

    @property
    def profile(self) -> str:
        return self.data["evaluator"]["profile"]

    @property
    def pool(self) -> int | None:
        return self.data["evaluator"].get("pool")

    @property
    def method(self) -> dict:
        return self.data["submission"]["method"]

    @property
    def split_ids(self) -> list[str]:
        return sort_split_ids(self.data["splits"])

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
    pp = PurePosixPath(p)
    _need(not pp.is_absolute() and "\\" not in p and ".." not in pp.parts,
          f"{where} {p!r} must be a relative path inside the results folder")


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
    _need(pool is None or (isinstance(pool, int) and not isinstance(pool, bool) and pool >= 1),
          "evaluator.pool must be a positive integer or null")

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
    for key in ("paper", "code"):
        _need(method.get(key) is None or isinstance(method[key], str), f"submission.method.{key} must be a string")

    splits = obj["splits"]
    _need(isinstance(splits, dict) and len(splits) > 0, "splits must be a non-empty object")
    for sid, block in splits.items():
        where = f"splits[{sid!r}]"
        _check_metrics(block, where)
        for key in ("n_images", "n_anomalous"):
            v = block.get(key)
            _need(isinstance(v, int) and not isinstance(v, bool) and v >= 0, f"{where}.{key} must be a count")
        classes = block.get("classes", {})
        _need(isinstance(classes, dict), f"{where}.classes must be an object")
        for cls, cblock in classes.items():
            _check_metrics(cblock, f"{where}.classes[{cls!r}]")
    _check_metrics(obj["mean"], "mean")
    _need(_is_number(obj["seconds"]) and obj["seconds"] >= 0, "seconds must be a non-negative number")

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
        _need(str(p.get("split")) in splits, f"{where}.split must name a split of the result")
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


def load_result(path: Path, root: Path) -> Result:
    """Read and check one result file; raise :class:`ResultError` with one line if unusable."""
    path = Path(path)
    rel = path.relative_to(root).as_posix()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ResultError(f"{path}: cannot read it ({e.__class__.__name__}: {e})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ResultError(f"{path}: not a result file: not JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                          f"{_SCORE_HINT}") from None
    validator = _schema_validator()
    if validator is not None:
        err = next(iter(sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))), None)
        if err is not None:
            where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
            msg = err.message.replace("\n", " ")
            if len(msg) > 200:
                msg = msg[:200] + "…"
            raise ResultError(f"{path}: not a valid result (result.schema.json, at {where}: {msg}); {_SCORE_HINT}")
    try:
        check_result(obj)
    except _Problem as e:
        raise ResultError(f"{path}: not a valid result: {e}; {_SCORE_HINT}") from None
    for i, p in enumerate(obj.get("panels") or []):
        if not (path.parent / p["file"]).is_file():
            raise ResultError(f"{path}: panels[{i}] lists {p['file']!r}, which is not beside the result; "
                              f"keep the panel folder next to the result file or rescore with --panels N")
    return Result(path=path, rel=rel, data=obj)


def load_results(folder: Path) -> list[Result]:
    """Every ``*.json`` below ``folder`` (recursively, sorted by path), each checked."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultError(f"{folder}: no such results folder; pass --results DIR (the folder of "
                          f"`python -m evaluator score --out DIR/NAME.json` files)")
    # Hidden files (editor swap files, atomic-write leftovers) are not results.
    files = sorted((p for p in folder.rglob("*.json")
                    if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)),
                   key=lambda p: p.relative_to(folder).as_posix())
    if not files:
        raise ResultError(f"{folder}: holds no *.json result files; "
                          f"score a submission with `python -m evaluator score SUB --benchmark DIR --out {folder}/NAME.json`")
    return [load_result(p, folder) for p in files]
