"""Subgroup table: AUC, sensitivity, specificity per scanner, site, sex, age band (rule
tabulate_subgroups)."""

from mskdx.evaluate.subgroups import tabulate_subgroups_step
from mskdx.io import log_to
from mskdx.provenance.pages import without_pages, write_table_pages

log_to(snakemake.log[0])
tabulate_subgroups_step(
    snakemake.input.predictions,
    snakemake.input.manifest,
    external=snakemake.input.external,
    external_manifests=snakemake.input.external_manifests,
    image_threshold=snakemake.params.image_threshold,
    min_patients=snakemake.params.min_patients,
    **without_pages(snakemake.output),
)
write_table_pages(snakemake.output, snakemake.params.pages)
