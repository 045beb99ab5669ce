"""The core install (benchmark, evaluator, leaderboard) never needs PyTorch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Every module of the three core stages and the shared contract, imported the
# way their CLIs import them (``__main__`` modules only call ``main``); baselines/ is the only place torch may appear.
_PROBE = r"""
import importlib, pkgutil, sys
import contract, benchmark, evaluator, leaderboard
for pkg in (contract, benchmark, evaluator, leaderboard):
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if not info.name.endswith(".__main__"):
            importlib.import_module(info.name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "torchvision", "timm", "baselines"})
print("\n".join(bad))
sys.exit(1 if bad else 0)
"""


def test_core_stages_import_no_torch():
    proc = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"core modules imported: {proc.stdout.split()} {proc.stderr[-2000:]}"


def test_torch_is_only_in_the_baselines_extra():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    core = cfg["options"]["install_requires"]
    for name in ("torch", "torchvision", "timm"):
        assert name not in core.split(), f"{name} must not be a core dependency"
    assert "torch==2.14.1" in cfg["options.extras_require"]["baselines"]
    assert "torchvision==0.29.1" in cfg["options.extras_require"]["baselines"]
