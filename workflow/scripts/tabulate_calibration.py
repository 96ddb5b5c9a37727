"""Calibration table: Brier score, intercept and slope with CIs (rule tabulate_calibration).

The CIs are clustered by patient (issue 37); the image-independent ones sit beside them in
`*_ci_independent`.
"""

from mskdx.evaluate.clinical import write_calibration_table
from mskdx.io import log_to
from mskdx.provenance.pages import without_pages, write_table_pages

log_to(snakemake.log[0])
write_calibration_table(
    snakemake.input.predictions,
    levels=snakemake.params.levels,
    method=snakemake.params.method,
    external=snakemake.input.external,
    clustered=True,
    **without_pages(snakemake.output),
)
write_table_pages(snakemake.output, snakemake.params.pages)
