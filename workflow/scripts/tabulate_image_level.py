"""Gout Table I: image-level metrics per arm vs the best (rule tabulate_image_level)."""

from mskdx.evaluate.tables import write_image_level_table
from mskdx.io import log_to
from mskdx.provenance.pages import without_pages, write_table_pages

log_to(snakemake.log[0])
write_image_level_table(
    snakemake.input.predictions,
    reference=snakemake.params.reference,
    image_threshold=snakemake.params.image_threshold,
    **without_pages(snakemake.output),
)
write_table_pages(snakemake.output, snakemake.params.pages)
