"""Recompute the papers' printed summary numbers from their counts (rule check_papers)."""

from mskdx.evaluate.papers.check import write_paper_check
from mskdx.io import log_to
from mskdx.provenance.pages import without_pages, write_table_pages

log_to(snakemake.log[0])
write_paper_check(**without_pages(snakemake.output))
write_table_pages(snakemake.output, snakemake.params.pages)
