from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# One file per stage, in pipeline order. Small jobs (splits, tables, figures) say `localrule: True`
# where they are defined: on a cluster each would cost a scheduler round trip.
include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/ood.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/gradcam.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/external.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/deploy.smk"
include: "workflow/rules/provenance.smk"


# the front page, written from this run's config (common.smk, front_page)
report: front_page()


rule all:
    input:
        get_final_output(),
        # the crate reads every final output: it is not one of them
        str(LAYOUT.crate()),
    localrule: True


onsuccess:
    # the terminal summary: where outputs and logs are, and the warnings raised in jobs
    print(
        run_summary(LAYOUT.results, LAYOUT.results / "logs", snakemake_log=log),
        file=sys.stderr,
    )
