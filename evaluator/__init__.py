"""The COCO-AD evaluator: validates submission folders and scores them exactly.

    import evaluator
    problems = evaluator.validate("submissions/my-method", "data/coco-ad")   # [] when valid
    result = evaluator.score("submissions/my-method", "data/coco-ad", profile="exact")

``score`` returns the result dict (``schemas/result.schema.json``) and writes
it only when given ``out=``; both raise nothing for a bad submission except
``score``'s :class:`SubmissionError` (one line per problem).
"""

__version__ = "0.1.0"

from evaluator.score import score  # noqa: E402
from evaluator.validate import SubmissionError, validate  # noqa: E402

__all__ = ["score", "validate", "SubmissionError", "__version__"]
