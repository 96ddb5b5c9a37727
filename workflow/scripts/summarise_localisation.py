"""Grad-CAM localisation against the lesion masks, per arm (rule summarise_localisation)."""

from mskdx.evaluate.localisation import summarise_localisation_step
from mskdx.io import log_to
from mskdx.provenance.pages import without_pages, write_table_pages

log_to(snakemake.log[0])
summarise_localisation_step(snakemake.input.scores, **without_pages(snakemake.output))
write_table_pages(snakemake.output, snakemake.params.pages)
