from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/external.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/predict.smk"


# Small jobs run where snakemake runs: on a cluster each would cost a scheduler round trip.
localrules:
    all,
    make_splits,
    tabulate_complexity,
    tabulate_image_level,
    tabulate_patient_level,
    tabulate_sequences,
    check_papers,
    summarise_localisation,
    plot_training_curves,
    plot_confusion,
    plot_roc,
    plot_threshold,
    plot_montage,
    plot_crop_qc,
    plot_gradcam,
    plot_localisation,


rule all:
    input:
        get_final_output(),
