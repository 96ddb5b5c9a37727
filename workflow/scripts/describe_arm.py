"""The settings a trained arm is run with again: arm.json beside its fold models (rule
describe_arm)."""

from mskdx.io import log_to
from mskdx.learn.arm_settings import write_arm_settings

log_to(snakemake.log[0])
write_arm_settings(snakemake.output.settings, snakemake.params.settings)
