# The run's provenance: results/ as a Workflow Run RO-Crate (Provenance Run Crate 0.5) with every
# job, file hash, the commit, lock and configuration (docs/provenance.md). It reads every final
# output, so any change reruns it (cheap: hashes and Snakemake's job records); `mskdx verify`
# checks a results folder against it.


rule write_crate:
    input:
        outputs=get_final_output(),
        code=library_sources(
            "provenance/crate",
            "provenance/records",
            "provenance/environment",
            "ingest/inputs",
        ),
    output:
        crate=report(
            str(LAYOUT.crate()),
            caption="../report/crate.rst",
            category="Provenance",
            labels={"file": "RO-Crate metadata"},
        ),
    log:
        "results/logs/write_crate/all.log",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        repo_root=get_repo_root(),
        config=config,
        config_files=get_config_files(),
        input_trees=get_input_trees(),
    script:
        "../scripts/write_crate.py"
