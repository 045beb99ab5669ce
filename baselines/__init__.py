"""baselines stage of the COCO-AD suite."""
