"""Leaderboard stage of the COCO-AD suite.

``python -m leaderboard build`` turns evaluator result files (JSON, SPEC §5)
into a README-ready Markdown table, a static ``index.html`` and matplotlib
plots; ``python -m leaderboard.demo`` runs the whole chain on the embedded
demo benchmark. The only inputs are result files and the published numbers
in ``leaderboard/data/``; nothing here imports another stage's internals.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
