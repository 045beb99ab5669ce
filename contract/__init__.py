"""What every stage of the suite shares, and nothing else.

The stages (``benchmark`` → ``baselines`` → ``evaluator`` → ``leaderboard``)
are linked by file contracts (SPEC.md). This package holds the few pieces of
those contracts that more than one stage has to spell the same way:

- :mod:`contract.names`: metric names and their order, scoring profiles,
  split-id ordering, default worker counts;
- :mod:`contract.files`: atomic writes, canonical JSON and the sha256
  checksums that SPEC §3 and §4 define.

It imports no stage (no cycle) and needs only the standard library.
"""
