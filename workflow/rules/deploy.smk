# Deployment: a model card per arm, generated from the run's tables (in rule all and the report).
# `mskdx predict --dicom-out/--dicom-send` and `mskdx export` are commands, not rules here;
# predict's DICOM results in the workflow come from rule predict_folder (config predict.dicom_out).


rule write_model_card:
    input:
        unpack(get_model_card_tables),
        code=library_sources(
            "provenance/pages", "ingest/label_levels", "deploy/model_card"
        ),
    output:
        card="results/{study}/model_card_{arm}.md",
        page=report(
            "results/{study}/model_card_{arm}.html",
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
        pages=page_titles(page="Model card: {arm}"),
        settings=get_model_card_settings,
    script:
        "../scripts/write_model_card.py"
