"""ROC curves of every arm: development (pooled CV) beside each external cohort."""

from mskdx.evaluate.external import plot_roc_external_step
from mskdx.io import log_to

log_to(snakemake.log[0])
plot_roc_external_step(
    snakemake.input.development,
    snakemake.input.external,
    outputs=[snakemake.output.figure, *snakemake.output.extra],
    style={"dpi": snakemake.params.dpi, "roc": snakemake.params.roc},
)
