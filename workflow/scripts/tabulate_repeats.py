"""Table I's companion: repeated CV and the corrected resampled t-test (rule tabulate_repeats)."""

from mskdx.evaluate.repeats import tabulate_repeats_step
from mskdx.io import log_to
from mskdx.provenance.pages import without_pages, write_table_pages

log_to(snakemake.log[0])
tabulate_repeats_step(
    snakemake.input.predictions,
    folds=snakemake.params.folds,
    train_repeats=snakemake.params.train_repeats,
    image_threshold=snakemake.params.image_threshold,
    reference=snakemake.params.reference,
    **without_pages(snakemake.output),
)
write_table_pages(snakemake.output, snakemake.params.pages)
