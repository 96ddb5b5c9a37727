"""Gout Table II: parameters and MACs of each arm at the crop size (rule tabulate_complexity)."""

from mskdx.evaluate.complexity import write_complexity_table
from mskdx.io import log_to

log_to(snakemake.log[0])
write_complexity_table(
    snakemake.params.arms,
    (3, snakemake.params.height, snakemake.params.width),
    **snakemake.output,
)
