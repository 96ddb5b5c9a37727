"""Stage 4, use: score new patients with the trained fold models (`mskdx predict`, rule file
`predict.smk`), their results as DICOM for the PACS (`dicom_out`, `sources`) and sent there
(`send`), portable models (`export`, `mskdx export`) and a model card per arm (`model_card`,
rule file `deploy.smk`)."""
