"""The reporting checklist of a run: CLAIM 2024 and TRIPOD+AI, numbered as the guidelines print.

`items.yaml` (shipped with the package) holds the items: guideline, number as printed, section,
topic, who answers it, and for the items the run can answer the evidence template and the files
that hold it, with the sources they were transcribed from. `mskdx.evaluate.checklist.fill` reads
it and fills status and evidence from the run (`write_checklist`, rule tabulate_checklist).
"""
