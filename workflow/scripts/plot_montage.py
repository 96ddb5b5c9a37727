"""Test predictions framed green (correct) or red (wrong) (rule plot_montage)."""

from mskdx.evaluate.figures.montage import plot_montage_step
from mskdx.io import log_to

log_to(snakemake.log[0])
outputs = [snakemake.output.figure, *snakemake.output.extra]
plot_montage_step(
    snakemake.input.predictions,
    snakemake.input.images,
    snakemake.input.manifest,
    class_names=snakemake.params.class_names,
    seed=snakemake.params.seed,
    outputs=outputs,
    style={"dpi": snakemake.params.dpi, "montage": snakemake.params.montage},
)
