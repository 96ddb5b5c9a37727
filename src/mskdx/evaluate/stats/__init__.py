"""Statistics for the paper tables: Wilson proportions (`proportions`), DeLong AUCs and tests
(`delong`), Hanley-McNeil (`hanley`), McNemar (`mcnemar`), binary metrics (`metrics`), the
patient-level threshold (`threshold`), calibration (`calibration`, with `separation` and
Firth's fit `firth`), net benefit (`decision`), and for images clustered by patient the
Obuchowski AUC (`clustered`), Durkalski McNemar and cluster-robust proportions
(`clustered_binary`) and Holm's adjustment (`multiplicity`). What each prints on degenerate
inputs is in docs/statistics.md.

Labels: 1 = positive (gout / lesion), 0 = negative; a higher score means more likely positive.
"""
