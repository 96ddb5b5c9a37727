"""OLT Table II: per-class metrics per MRI sequence (rule tabulate_sequences)."""

from mskdx.evaluate.tables import write_sequence_table
from mskdx.io import log_to
from mskdx.provenance.pages import without_pages, write_table_pages

log_to(snakemake.log[0])
write_sequence_table(
    snakemake.input.predictions,
    image_threshold=snakemake.params.image_threshold,
    **without_pages(snakemake.output),
)
write_table_pages(snakemake.output, snakemake.params.pages)
