"""The two papers: their printed numbers (`printed`) and a check of those numbers (`check`).

`mskdx.evaluate.papers.printed` holds the transcribed tables and text numbers;
`mskdx.evaluate.papers.check.paper_check` recomputes the papers' summary numbers from their own
counts and grades each row, one module per paper (`gout`, `gout_pvalues` and `gout_patients`
for Xiao et al., `olt` for Dabiry et al.) on the row type, grades and CI helpers of `common`.
None is imported here, so reading the printed numbers (the tables) does not load the
statistics.
"""
