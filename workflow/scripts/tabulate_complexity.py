"""Parameters and MACs of each arm at the study's input size (rules tabulate_complexity,
tabulate_complexity_olt)."""

from mskdx.evaluate.complexity import write_complexity_table
from mskdx.io import log_to
from mskdx.provenance.pages import without_pages, write_table_pages

log_to(snakemake.log[0])
write_complexity_table(
    snakemake.params.arms,
    tuple(snakemake.params.input_shape),
    **without_pages(snakemake.output),
    title=snakemake.params.title,
)
write_table_pages(snakemake.output, snakemake.params.pages)
