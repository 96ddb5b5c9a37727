"""Pooled test-set confusion matrix of one arm (rule plot_confusion)."""

from mskdx.evaluate.figures.confusion import plot_confusion_step
from mskdx.io import log_to

log_to(snakemake.log[0])
outputs = [snakemake.output.figure, *snakemake.output.extra]
plot_confusion_step(
    snakemake.input.predictions,
    class_names=snakemake.params.class_names,
    image_threshold=snakemake.params.image_threshold,
    title=f"{snakemake.wildcards.study} {snakemake.wildcards.arm}",
    outputs=outputs,
    style={"dpi": snakemake.params.dpi},
)
