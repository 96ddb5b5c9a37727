"""Stage 3, results: statistics, the papers' tables with their printed numbers beside ours, the
figures, external validation, calibration and decision curves, the reporting checklist and the
check of the papers' own numbers (rule files `tables.smk`, `figures.smk`, `external.smk`,
`calibration.smk`)."""
