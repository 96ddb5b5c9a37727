"""The two papers: their printed numbers (`printed`) and a check of those numbers (`check`).

`mskdx.evaluate.papers.printed` holds the transcribed tables and text numbers;
`mskdx.evaluate.papers.check.paper_check` recomputes the papers' summary numbers from their own
counts. Neither is imported here, so reading the printed numbers (the tables) does not load the
statistics.
"""
