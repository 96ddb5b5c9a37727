"""Statistics for the paper tables: Wilson proportions (`proportions`), DeLong AUCs and tests
(`delong`), Hanley-McNeil (`hanley`), McNemar (`mcnemar`), binary metrics (`metrics`), the
patient-level threshold (`threshold`), calibration (`calibration`, with `separation` and
Firth's fit `firth`) and net benefit (`decision`). What each prints on degenerate inputs is in
docs/statistics.md.

Labels: 1 = positive (gout / lesion), 0 = negative; a higher score means more likely positive.
"""
