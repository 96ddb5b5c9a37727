"""The configuration and the results layout: one owner for both.

`load` reads, merges and checks config files (Snakemake's `common.smk` and the `mskdx` command
call the same functions, so both give the same short errors); `layout` turns a checked config
into each job's settings and into every path under results/ and private/; `checks` holds the
checks that need more than the schema (a user's split file, the data source of existing
outputs, inputs left unset). Rules, scripts and commands ask these modules; none re-derives a
path or parses a fold number back out of one.
"""
