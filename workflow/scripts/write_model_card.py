"""Write the model card of one arm from the run's tables (rule write_model_card)."""

from mskdx.deploy.model_card import write_model_card
from mskdx.io import log_to
from mskdx.provenance.pages import write_markdown_html

log_to(snakemake.log[0])
write_model_card(
    snakemake.output.card,
    study=snakemake.wildcards.study,
    arm=snakemake.wildcards.arm,
    settings=snakemake.params.settings,
    manifest=snakemake.input.manifest,
    performance=snakemake.input.performance,
    calibration=snakemake.input.calibration,
    patients=snakemake.input.get("patients"),
    external=list(snakemake.input.get("external", [])),
    localisation=snakemake.input.localisation,
    subgroups=snakemake.input.subgroups,
)
write_markdown_html(
    snakemake.output.card, snakemake.output.page, title=snakemake.params.pages["page"]
)
