"""Stage 4, use: score new patients with the trained fold models (`mskdx predict`, rule file
`predict.smk`)."""
