"""Published metric settings, in one place (names, profiles, threshold grids).

Profile ``exact`` (the default) is the definition of SPEC §5 without binning;
profile ``ader`` reproduces ADer's ``util/metric.py`` as the paper's COCO-AD
configs ran it; ``ader-bench`` as ADer's benchmark configs ran it
(``use_adeval=True``). Every constant that differs between them lives here,
with the reason next to it.
"""

from __future__ import annotations

import numpy as np

# Metric names and profiles are shared with the other stages: one home, contract.names.
from contract.names import METRIC_NAMES, PROFILES  # noqa: F401  (re-exported)

#: AUPRO integration limit on the false-positive rate (MVTec AD and ADer).
AUPRO_FPR_LIMIT = 0.3

#: exact: thresholds 0.2, 0.3, …, 0.8 of the normalised maps, each the double
#: nearest to its decimal (i / 10, correctly rounded).
EXACT_MID_GRID = np.arange(2, 9) / 10.0

#: exact: thresholds 0.00, 0.01, …, 1.00 (i / 100) of the threshold sweeps for plots.
EXACT_SWEEP_GRID = np.arange(101) / 100.0

#: ader: ``np.arange(0.2, 0.8 + 1e-3, 0.1)`` as ADer writes it; its values carry
#: arange's rounding (0.30000000000000004, …, 0.8000000000000003).
ADER_MID_GRID = np.arange(0.2, 0.8 + 1e-3, 0.1)

#: ader: the 21 thresholds ``np.arange(0, 1 + 1e-3, 0.05)`` of P-F1max, mIoU-max and sweeps.
ADER_MAX_GRID = np.arange(0.0, 1.0 + 1e-3, 0.05)

#: ader: the epsilon ADer adds to every denominator of its thresholded metrics.
ADER_EPS = 1e-8

#: ader: AUPRO threshold count S, ``np.arange(min, max, (max - min) / S)``:
#: ``max_step_aupro=100`` in every InvAD / COCO config and in ADer's
#: ``configs/__base__/cfg_common.py``; 200 is only the constructor's default.
ADER_AUPRO_STEPS = 100

#: ader-bench: ADEval's ``nstrips`` in ADer's ``util/metric.py``
#: (``EvalAccumulatorCuda(..., nstrips=50)``): the bins of P-AUROC, P-AP and AUPRO.
ADEVAL_NSTRIPS = 50

#: The profiles that follow ADer's ``util/metric.py``: its thresholded metrics
#: in float32, its image label from the ground truth at the evaluation size
#: (``gt_px.max()``), its pooled image score. ``ader-bench`` differs from
#: ``ader`` only in P-AUROC, P-AP and AUPRO.
ADER_PROFILES = ("ader", "ader-bench")
