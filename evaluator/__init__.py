"""The COCO-AD evaluator: validates submission folders and scores them exactly."""

__version__ = "0.1.0"
