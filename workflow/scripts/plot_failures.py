"""The failure gallery: most confident false positives and negatives per arm, with Grad-CAM
(rule plot_failures)."""

from mskdx.evaluate.figures.failures import plot_failures_step
from mskdx.io import log_to

log_to(snakemake.log[0])
plot_failures_step(
    snakemake.input.predictions,
    snakemake.input.checkpoints,
    snakemake.input.images,
    snakemake.input.masks,
    snakemake.input.manifest,
    outputs=[snakemake.output.figure, *snakemake.output.extra],
    style={"dpi": snakemake.params.dpi},
    per_kind=snakemake.params.per_kind,
    image_threshold=snakemake.params.image_threshold,
    runs=snakemake.params.runs,
    layers=snakemake.params.layers,
    threads=snakemake.params.threads,
    table=snakemake.output.table,
)
