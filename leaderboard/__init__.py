"""leaderboard stage of the COCO-AD suite."""
