"""Recompute the papers' printed summary numbers from their counts (rule check_papers)."""

from mskdx.evaluate.papers.check import write_paper_check
from mskdx.io import log_to

log_to(snakemake.log[0])
write_paper_check(**snakemake.output)
