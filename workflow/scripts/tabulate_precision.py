"""Precision and sample size: design effects, effective n, CI half-widths, events, Riley's
criteria (rule tabulate_precision)."""

from mskdx.evaluate.precision import tabulate_precision_step
from mskdx.io import log_to
from mskdx.provenance.pages import without_pages, write_table_pages

log_to(snakemake.log[0])
tabulate_precision_step(
    snakemake.input.predictions,
    study=snakemake.wildcards.study,
    image_threshold=snakemake.params.image_threshold,
    external=snakemake.input.external,
    riley=snakemake.params.riley,
    **without_pages(snakemake.output),
)
write_table_pages(snakemake.output, snakemake.params.pages)
