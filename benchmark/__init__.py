"""COCO-AD benchmark: building benchmark folders and reading them.

The public API of this stage is what other stages may import:

- :func:`open_benchmark` / :class:`Benchmark` / :class:`Item` read a benchmark
  folder (``benchmark.json`` + ADer-format ``meta_*.json`` + masks).
- :mod:`benchmark.protocol` resizes ground truth and anomaly maps the way the
  benchmark's ``protocol`` block says.

Shared file helpers (atomic writes, canonical JSON, checksums) live in
:mod:`contract.files`, beside the other names every stage shares.
"""

__version__ = "0.1.0"

from benchmark.folder import Benchmark, BenchmarkError, Item, open_benchmark  # noqa: E402

__all__ = ["Benchmark", "BenchmarkError", "Item", "open_benchmark", "__version__"]
