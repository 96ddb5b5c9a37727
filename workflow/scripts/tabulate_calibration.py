"""Calibration table: Brier score, intercept and slope with CIs (rule tabulate_calibration)."""

from mskdx.evaluate.clinical import write_calibration_table
from mskdx.io import log_to

log_to(snakemake.log[0])
write_calibration_table(
    snakemake.input.predictions,
    levels=snakemake.params.levels,
    method=snakemake.params.method,
    external=snakemake.input.external,
    **snakemake.output,
)
