"""Decision curve: net benefit of every arm vs treat all / none (rule plot_decision_curve)."""

from mskdx.evaluate.clinical import plot_decision_curve_step
from mskdx.io import log_to

log_to(snakemake.log[0])
curve = snakemake.params.curve
plot_decision_curve_step(
    snakemake.input.predictions,
    level=curve["level"],
    external=snakemake.input.external,
    low=curve["low"],
    high=curve["high"],
    step=curve["step"],
    title=snakemake.wildcards.study,
    table=snakemake.output.table,
    outputs=[snakemake.output.figure, *snakemake.output.extra],
    style={"dpi": snakemake.params.dpi},
)
