"""Recompute the papers' printed summary numbers from their counts (rule check_papers)."""

from mskdx.io import log_to
from mskdx.steps import write_paper_check

log_to(snakemake.log[0])
write_paper_check(**snakemake.output)
