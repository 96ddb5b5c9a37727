"""Gout Table I: image-level metrics per arm vs the best (rule tabulate_image_level)."""

from mskdx.evaluate.tables import write_image_level_table
from mskdx.io import log_to

log_to(snakemake.log[0])
write_image_level_table(
    snakemake.input.predictions,
    best_arm=snakemake.params.best_arm,
    image_threshold=snakemake.params.image_threshold,
    **snakemake.output,
)
