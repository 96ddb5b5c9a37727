"""Gout Table I: image-level metrics per arm vs the best (rule tabulate_image_level)."""

from mskdx.io import log_to
from mskdx.steps import write_image_level_table

log_to(snakemake.log[0])
write_image_level_table(
    snakemake.input.predictions,
    best_arm=snakemake.params.best_arm,
    image_threshold=snakemake.params.image_threshold,
    **snakemake.output,
)
