"""Training and validation loss/accuracy of one job (rule plot_training_curves)."""

from mskdx.evaluate.figures.curves import plot_training_curves_step
from mskdx.io import log_to

log_to(snakemake.log[0])
outputs = [snakemake.output.figure, *snakemake.output.extra]
plot_training_curves_step(
    snakemake.input.history,
    title=f"{snakemake.wildcards.study} {snakemake.wildcards.arm} fold {snakemake.wildcards.fold}",
    outputs=outputs,
    style={"dpi": snakemake.params.dpi},
)
