"""CLAIM 2024 / TRIPOD+AI checklist filled from the run (rule tabulate_checklist)."""

from mskdx.evaluate.checklist.fill import write_checklist
from mskdx.io import log_to
from mskdx.provenance.pages import without_pages, write_table_pages

log_to(snakemake.log[0])
write_checklist(
    study=snakemake.wildcards.study,
    manifest=snakemake.input.manifest,
    refused=snakemake.input.refused,
    splits=snakemake.input.splits,
    precision=snakemake.input.precision,
    settings=snakemake.params.settings,
    figure_format=snakemake.params.formats[0],
    **without_pages(snakemake.output),
)
write_table_pages(snakemake.output, snakemake.params.pages)
