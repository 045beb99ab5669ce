"""Training checkpoints: one file per split, written atomically.

A checkpoint is a dict (``torch.save``) with: ``format`` (:data:`FORMAT`),
``versions``, ``preset`` (:meth:`Preset.to_dict`), ``model_version`` (the
method's :attr:`~baselines.common.model.ReconstructionModel.version`),
``benchmark`` (name, version, sha256, path), ``split``, ``epoch`` (epochs
finished), ``finished``, ``model`` (the full state dict, frozen encoder
included, so prediction needs no weight file or network), ``optimizer``,
``scheduler``, ``params`` (total/trainable), ``history`` (per-epoch loss,
lr, seconds, images/s, steps) and ``weights`` (where the encoder's weights
came from).

Format history: 1 (baselines 0.1.0: InvAD written from the paper), 2
(baselines 0.2.0: ``model_version`` added; InvAD as the official code builds
it). A checkpoint of another format, or of another version of its method's
architecture, is refused with one line: its weights do not fit the model.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from baselines.common.errors import BaselineError
from contract.files import atomic_open

FORMAT = 2
FILENAME = "checkpoint.pt"


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, rename."""
    with atomic_open(path, fsync=True) as f:
        torch.save(state, f)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated or foreign file
        raise BaselineError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or "model" not in state or not isinstance(state.get("format"), int):
        raise BaselineError(f"{path}: not a checkpoint of this suite's baselines (format {FORMAT})")
    if state["format"] != FORMAT:
        made_by = (state.get("versions") or {}).get("baselines", "unknown")
        raise BaselineError(
            f"{path}: checkpoint format {state['format']} (written by baselines {made_by}); this version reads "
            f"format {FORMAT} only: retrain (train --force, or another --out)"
        )
    return state


def check_model_version(path: str | os.PathLike, state: dict, model) -> None:
    """One-line error unless ``state`` was written for ``model``'s architecture version."""
    saved = state.get("model_version")
    if saved != model.version:
        method = state.get("preset", {}).get("method", "?")
        raise BaselineError(
            f"{path}: written by {method} architecture version {saved}, this version of the baselines builds "
            f"version {model.version}: retrain (train --force, or another --out)"
        )


def find_checkpoints(paths: list[str | os.PathLike]) -> list[Path]:
    """Checkpoint files named by ``paths``: files as they are; a run folder gives ``*/checkpoint.pt``."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob(f"*/{FILENAME}")) or ([p / FILENAME] if (p / FILENAME).is_file() else [])
            if not found:
                raise BaselineError(f"{p}: no {FILENAME} below this folder (train first)")
            out.extend(found)
        else:
            out.append(p)
    return out
