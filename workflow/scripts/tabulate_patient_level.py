"""Gout Table III: patient diagnosis by a training-fold threshold (rule tabulate_patient_level)."""

from mskdx.evaluate.tables import write_patient_level_table
from mskdx.io import log_to
from mskdx.provenance.pages import without_pages, write_table_pages

log_to(snakemake.log[0])
write_patient_level_table(
    snakemake.input.predictions,
    step=snakemake.params.step,
    image_threshold=snakemake.params.image_threshold,
    **without_pages(snakemake.output),
)
write_table_pages(snakemake.output, snakemake.params.pages)
