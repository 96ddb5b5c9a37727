"""Patient-level training accuracy against the threshold, per fold (rule plot_threshold)."""

from mskdx.evaluate.figures.threshold import plot_threshold_step
from mskdx.io import log_to

log_to(snakemake.log[0])
outputs = [snakemake.output.figure, *snakemake.output.extra]
plot_threshold_step(
    snakemake.input.curves,
    title=f"{snakemake.wildcards.arm}",
    outputs=outputs,
    style={"dpi": snakemake.params.dpi},
)
