# Deployment: a model card per arm, generated from the run's tables (in rule all and the report).
# `mskdx predict --dicom-out/--dicom-send` and `mskdx export` are commands, not rules here;
# predict's DICOM results in the workflow come from rule predict_folder (config predict.dicom_out).


rule write_model_card:
    input:
        unpack(get_model_card_tables),
        code=library_sources("ingest/label_levels", "deploy/model_card"),
    output:
        card=report(
            "results/{study}/model_card_{arm}.md",
            caption="../report/model_card.rst",
            category=study_category,
            subcategory="Model cards",
            labels={"arm": "{arm}"},
        ),
    log:
        "results/logs/write_model_card/{study}/{arm}.log",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        settings=get_model_card_settings,
    script:
        "../scripts/write_model_card.py"
