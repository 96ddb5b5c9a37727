"""Image- and patient-level tables of one external cohort (rule tabulate_external)."""

from mskdx.evaluate.external import write_external_tables
from mskdx.io import log_to
from mskdx.provenance.pages import without_pages, write_table_pages

log_to(snakemake.log[0])
write_external_tables(
    snakemake.input.per_fold,
    snakemake.input.ensemble,
    study=snakemake.wildcards.study,
    cohort=snakemake.wildcards.cohort,
    image_threshold=snakemake.params.image_threshold,
    reference=snakemake.params.reference,
    curves=snakemake.input.curves,
    **without_pages(snakemake.output),
)
write_table_pages(snakemake.output, snakemake.params.pages)
