"""Statistics for the paper tables: Wilson proportions, DeLong AUCs, McNemar, thresholds.

Labels: 1 = positive (gout / lesion), 0 = negative; a higher score means more likely positive.
"""

from mskdx.stats.delong import (
    DelongResult,
    DelongTest,
    delong_auc,
    delong_covariance,
    delong_placements,
    delong_test,
)
from mskdx.stats.hanley import hanley_mcneil_se
from mskdx.stats.mcnemar import McNemarResult, mcnemar, mcnemar_from_counts
from mskdx.stats.metrics import BinaryMetrics, binary_metrics
from mskdx.stats.proportions import Estimate, proportion, wilson_ci
from mskdx.stats.threshold import ThresholdSearch, diagnose, search_threshold, threshold_grid

__all__ = [
    "BinaryMetrics",
    "DelongResult",
    "DelongTest",
    "Estimate",
    "McNemarResult",
    "ThresholdSearch",
    "binary_metrics",
    "delong_auc",
    "delong_covariance",
    "delong_placements",
    "delong_test",
    "diagnose",
    "hanley_mcneil_se",
    "mcnemar",
    "mcnemar_from_counts",
    "proportion",
    "search_threshold",
    "threshold_grid",
    "wilson_ci",
]
