"""``benchmark.json`` (SPEC §3): assembling it, and adding splits to an existing one.

Keys: ``name``, ``version``, ``image_root``, ``protocol``, ``source``,
``splits``, ``files`` as SPEC §3 fixes them, ``masks`` (COCO-AD builds: how
annotations became masks, ``pycocotools`` or ``ader``) and ``builder`` (the
versions of the code that wrote the folder, since mask bytes depend on them). No
timestamps, sorted keys: the same build gives the same bytes.
"""

from __future__ import annotations

import json
import zlib
from importlib import metadata
from pathlib import Path

from benchmark.errors import BuildError
from contract.files import sha256_of_listing
from benchmark.folder import DEFAULT_MASKS, MANIFEST
from benchmark.protocol import DEFAULT_PROTOCOL

#: Version of the benchmark definitions (construction rules, layout). A change
#: that alters any list, label or mask of a benchmark bumps it.
BENCHMARK_VERSION = "1.0"


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def builder_info(libraries: dict[str, str] | None = None) -> dict:
    """Versions of everything that shapes the bytes of a build (plus ``libraries``, e.g. OpenCV's)."""
    from benchmark import __version__

    return {
        "name": "benchmark.build",
        "version": __version__,
        "numpy": _dist_version("numpy"),
        "pillow": _dist_version("pillow"),
        "pycocotools": _dist_version("pycocotools"),
        "zlib": zlib.ZLIB_VERSION,
        **(libraries or {}),
    }


def split_entry(
    meta: str,
    mask_dir: str,
    normal_classes: list[str],
    anomaly_classes: list[str],
    counts: dict[str, int],
    files: dict[str, str],
) -> dict:
    """One ``splits`` entry; ``files`` = {relpath: sha256} of the split's meta and masks."""
    return {
        "meta": meta,
        "mask_dir": mask_dir,
        "normal_classes": list(normal_classes),
        "anomaly_classes": list(anomaly_classes),
        "counts": {k: int(counts[k]) for k in ("train", "test_normal", "test_anomalous")},
        "sha256": sha256_of_listing(files.items()),
    }


def read_existing(out: Path) -> dict | None:
    """The manifest already in ``out``, or None; BuildError if it is unreadable."""
    path = Path(out) / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else e
        raise BuildError(f"{path}: existing manifest is not valid JSON ({why}); remove it or choose another --out") from None
    if (
        not isinstance(manifest, dict)
        or not isinstance(manifest.get("splits"), dict)
        or not isinstance(manifest.get("files"), dict)
        or not all(isinstance(e, dict) for e in manifest["splits"].values())
    ):
        raise BuildError(f"{path}: existing manifest lacks 'splits'/'files'; remove it or choose another --out")
    return manifest


def check_can_merge(
    existing: dict | None, out: Path, name: str, source: dict, split_ids: list[str], masks: str | None = None
) -> bool:
    """Whether the new splits join ``existing`` (True) or replace it (False).

    Another benchmark's manifest is never overwritten. Splits built from other
    source files, or with another mask mode (``masks``; absent in a manifest
    means ``pycocotools``), cannot share a manifest with the new ones: that is
    an error unless every split it holds is being rebuilt now.
    """
    if existing is None:
        return False
    if existing.get("name") != name:
        raise BuildError(
            f"{Path(out) / MANIFEST}: holds the benchmark {existing.get('name')!r}, not {name!r}; "
            f"choose another --out or remove it"
        )
    old_masks = existing.get("masks", DEFAULT_MASKS)
    same_masks = masks is None or old_masks == masks
    if existing.get("source") == source and same_masks:
        return True
    kept = sorted(set(existing["splits"]) - set(split_ids))
    if kept:
        why = "from other source files" if existing.get("source") != source else f"with --masks {old_masks}"
        raise BuildError(
            f"{Path(out) / MANIFEST}: holds split(s) {', '.join(kept)} built {why}; "
            f"rebuild all of them (--splits) or choose another --out"
        )
    return False


def owned_by(path: str, entry: dict) -> bool:
    """Whether ``files`` path ``path`` belongs to split ``entry`` (its meta, mask folder or
    evaluation-size ground truth)."""
    return (path == entry.get("meta") or path == entry.get("eval_gt")
            or path.startswith(str(entry.get("mask_dir", "")).rstrip("/") + "/"))


def assemble(
    existing: dict | None,
    merge: bool,
    name: str,
    source: dict,
    new_splits: dict[str, dict],
    new_files: dict[str, str],
    masks: str | None = None,
    libraries: dict[str, str] | None = None,
) -> dict:
    """The manifest after a build of ``new_splits`` (merged into ``existing`` if ``merge``).

    ``masks``: the mask mode of a COCO-AD build (key ``masks``); None for
    benchmarks whose masks are copied from the source (no key).
    """
    splits: dict[str, dict] = {}
    files: dict[str, str] = {}
    if merge and existing is not None:
        for sid, entry in existing["splits"].items():
            if sid not in new_splits:
                splits[sid] = entry
        for path, digest in existing["files"].items():
            if any(owned_by(path, e) for e in splits.values()) and not any(
                owned_by(path, e) for e in new_splits.values()
            ):
                files[path] = digest
    splits.update(new_splits)
    files.update(new_files)
    manifest = {
        "name": name,
        "version": BENCHMARK_VERSION,
        "image_root": ".",
        "protocol": dict(DEFAULT_PROTOCOL),
        "source": dict(source),
        "splits": splits,
        "files": files,
        "builder": builder_info(libraries),
    }
    if masks is not None:
        manifest["masks"] = masks
    return manifest
