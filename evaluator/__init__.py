"""The COCO-AD evaluator: validates submission folders and scores them exactly.

    import evaluator
    problems = evaluator.validate("submissions/my-method", "data/coco-ad")   # [] when valid
    result = evaluator.score("submissions/my-method", "data/coco-ad", profile="exact")

``validate`` returns the problems of a submission folder, one line each.
``score`` returns the result dict (``schemas/result.schema.json``), writes it
only when given ``out=``, and raises :class:`SubmissionError` (one line per
problem) for a bad submission before writing anything.

The package attributes ``score`` and ``validate`` are these functions; the
modules of the same name are ``sys.modules["evaluator.score"]`` etc., reached
with ``from evaluator.score import ...``.
"""

__version__ = "0.1.0"

from evaluator.score import score  # noqa: E402
from evaluator.validate import SubmissionError, validate  # noqa: E402

__all__ = ["score", "validate", "SubmissionError", "__version__"]
