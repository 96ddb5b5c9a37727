from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# One file per stage, in pipeline order. Small jobs (splits, tables, figures) say `localrule: True`
# where they are defined: on a cluster each would cost a scheduler round trip.
include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/gradcam.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/external.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/deploy.smk"


rule all:
    input:
        get_final_output(),
    localrule: True
