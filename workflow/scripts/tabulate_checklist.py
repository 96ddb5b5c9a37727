"""CLAIM 2024 / TRIPOD+AI checklist filled from the run (rule tabulate_checklist)."""

from mskdx.evaluate.checklist.fill import write_checklist
from mskdx.io import log_to

log_to(snakemake.log[0])
write_checklist(
    study=snakemake.wildcards.study,
    manifest=snakemake.input.manifest,
    refused=snakemake.input.refused,
    splits=snakemake.input.splits,
    settings=snakemake.params.settings,
    figure_format=snakemake.params.formats[0],
    **snakemake.output,
)
