"""Reliability diagram of one arm with a LOWESS curve (rule plot_calibration)."""

from mskdx.evaluate.clinical import plot_calibration_step
from mskdx.io import log_to

log_to(snakemake.log[0])
plot_calibration_step(
    snakemake.input.predictions,
    arm=snakemake.wildcards.arm,
    external=snakemake.input.external,
    level=snakemake.params.level,
    bins=snakemake.params.bins,
    strategy=snakemake.params.strategy,
    lowess_frac=snakemake.params.lowess_frac,
    table=snakemake.output.table,
    outputs=[snakemake.output.figure, *snakemake.output.extra],
    style={"dpi": snakemake.params.dpi},
)
