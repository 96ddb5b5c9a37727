"""The run's Workflow Run RO-Crate, results/ro-crate-metadata.json (rule write_crate)."""

from pathlib import Path

from mskdx.io import log_to
from mskdx.provenance.crate import build_crate

log_to(snakemake.log[0])
build_crate(
    Path(snakemake.output.crate).parent,  # results/ is the crate
    repo_root=snakemake.params.repo_root,
    config=snakemake.params.config,
    config_files=snakemake.params.config_files,
    input_trees=snakemake.params.input_trees,
)
