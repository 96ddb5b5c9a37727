"""Write the synthetic DICOM cohort of one study (rule synthesize_cohort)."""

from pathlib import Path

from mskdx.io import log_to
from mskdx.synth import synthesize

log_to(snakemake.log[0])
synthesize(
    snakemake.wildcards.study,
    Path(snakemake.output.labels).parent,
    {
        "seed": snakemake.params.seed,
        "difficulty": snakemake.params.difficulty,
        snakemake.wildcards.study: snakemake.params.cohort,
    },
)
