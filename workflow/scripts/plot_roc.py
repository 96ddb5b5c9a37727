"""Test-set ROC curves of every arm with DeLong CIs (rule plot_roc)."""

from mskdx.evaluate.figures.roc import plot_roc_step
from mskdx.io import log_to

log_to(snakemake.log[0])
outputs = [snakemake.output.figure, *snakemake.output.extra]
plot_roc_step(
    snakemake.input.predictions,
    title=snakemake.wildcards.study,
    outputs=outputs,
    style={"dpi": snakemake.params.dpi, "roc": snakemake.params.roc},
)
