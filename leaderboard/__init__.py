"""Leaderboard stage of the COCO-AD suite.

``python -m leaderboard build`` turns evaluator result files (JSON, SPEC §5)
into a README-ready Markdown table, a static ``index.html``, a CSV and
matplotlib plots; ``python -m leaderboard.demo`` runs the whole chain on the
embedded demo benchmark. The only inputs are result files and the published
numbers in ``leaderboard/data/``; nothing here imports another stage's
internals.

From Python::

    import leaderboard
    df = leaderboard.load_results(["runs/demo/results", "my-result.json"])
    df.groupby(["method", "setting"])[["mAD", "I-AUROC", "P-AUROC"]].agg(["mean", "std"])
"""

__version__ = "0.2.0"

__all__ = ["__version__", "load_results"]


def load_results(paths):
    """Result files and folders (searched recursively) as a pandas DataFrame, one row per result × split.

    ``paths``: a path or a list of paths. Columns: provenance (result key,
    benchmark name / version / sha256, split, profile, pool, AUPRO steps,
    method, preset, submission, …) and every metric and average as a fraction
    in [0, 1] (NaN where undefined); see :mod:`leaderboard.frame`. Files are
    checked as ``leaderboard build`` checks them: a malformed result raises
    :class:`leaderboard.results.ResultError` (one line); JSON files in a folder
    that are not results are skipped.
    """
    from leaderboard.frame import frame
    from leaderboard.results import read_results

    return frame(read_results(paths))
