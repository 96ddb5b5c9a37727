"""A small, seeded size check of the clustered AUC test in the suite (issue 37; the full grid is
benchmarks/bench_inference.py). 200 null cohorts of 40 patients with 6 to 10 images, two arms of
equal skill with a strong arm-specific patient effect (SD 1.5). The clustered test's empirical
size must stay below 0.12 (nominal 0.05; the Monte Carlo SE of a rate of 0.05 over 200 cohorts
is 0.015, and with only 40 patients the normal approximation is a little liberal: 0.04 to 0.085
over seeds 1, 2, 3 and 37), while the image-independent DeLong test must exceed 0.20 (0.31 to
0.39 over the same seeds). Seeded, so the run cannot flake; the bands hold for other seeds too.
"""

from __future__ import annotations

import numpy as np

from mskdx.evaluate.stats.clustered import clustered_auc_test
from mskdx.evaluate.stats.delong import delong_test


def null_cohort(rng: np.random.Generator, n_patients: int = 40):
    sizes = rng.integers(6, 11, n_patients)
    patients = np.repeat(np.arange(n_patients), sizes)
    diseased = rng.random(n_patients) < 0.5
    y = (diseased[patients] & (rng.random(patients.size) < 0.8)).astype(int)
    u = rng.normal(0, 0.5, n_patients)[patients]
    v = rng.normal(0, 1.5, (2, n_patients))[:, patients]
    scores = 1.5 * y + u + v + rng.normal(size=(2, patients.size))
    return y, patients, scores


def test_clustered_auc_test_holds_its_size_where_delong_does_not():
    rng = np.random.default_rng(37)
    clustered = independent = 0
    n = 200
    for _ in range(n):
        y, patients, s = null_cohort(rng)
        clustered += clustered_auc_test(y, s[0], s[1], patients).pvalue < 0.05
        independent += delong_test(y, s[0], s[1]).pvalue < 0.05
    assert clustered / n < 0.12
    assert independent / n > 0.20
