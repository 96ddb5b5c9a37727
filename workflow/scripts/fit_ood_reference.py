"""An arm's out-of-distribution reference from its development images (rule ood_reference):
`mskdx.deploy.ood.reference_step`, beside arm.json."""

from mskdx.deploy.ood import reference_step
from mskdx.io import log_to

log_to(snakemake.log[0])
reference_step(
    dict(zip(snakemake.params.folds, snakemake.input.checkpoints, strict=True)),
    images=snakemake.input.images,
    manifest=snakemake.input.manifest,
    splits=snakemake.input.splits,
    out=snakemake.output.reference,
    sequence=snakemake.params.sequence,
    threads=snakemake.params.threads,
)
