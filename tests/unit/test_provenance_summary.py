"""The terminal summary at the end of a run names outputs, crate, logs and job warnings."""

from __future__ import annotations

from mskdx.provenance.summary import job_warnings, run_summary


def test_summary_lists_warnings_of_job_logs(tmp_path):
    logs = tmp_path / "results/logs"
    (logs / "train_fold/gout/blocks2").mkdir(parents=True)
    (logs / "train_fold/gout/blocks2/0.log").write_text(
        "2026-12-07 10:00:00,001 INFO mskdx.learn.train: epoch 1\n"
        "2026-12-07 10:00:01,002 WARNING mskdx.learn.train: no validation images; the last "
        "epoch is kept\n"
        "2026-12-07 10:00:02,002 WARNING mskdx.learn.train: no validation images; the last "
        "epoch is kept\n"
    )
    (logs / "plot_roc").mkdir()
    (logs / "plot_roc/gout.log").write_text(
        "x.py:3: UserWarning: Glyph 8722 missing from font\n  warnings.warn(\n"
    )
    (tmp_path / "results/ro-crate-metadata.json").write_text("{}")
    assert job_warnings(logs) == [
        ("plot_roc/gout.log", "Glyph 8722 missing from font"),
        ("train_fold/gout/blocks2/0.log", "mskdx.learn.train: no validation images; the last "
         "epoch is kept"),
    ]  # fmt: skip
    text = run_summary(tmp_path / "results", logs, snakemake_log=".snakemake/log/x.log")
    assert "warnings raised in jobs (2):" in text
    assert "train_fold/gout/blocks2/0.log: mskdx.learn.train: no validation images" in text
    assert f"mskdx verify {tmp_path / 'results/ro-crate-metadata.json'}" in text
    assert "Snakemake's log: .snakemake/log/x.log" in text
    # onsuccess hands over Snakemake's log as a list of files
    listed = run_summary(tmp_path / "results", logs, snakemake_log=[".snakemake/log/x.log"])
    assert "Snakemake's log: .snakemake/log/x.log\n" in listed


def test_summary_of_a_clean_run(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/a.log").write_text("2026-12-07 10:00:00 INFO a: done\n")
    text = run_summary(tmp_path, tmp_path / "logs")
    assert "no warnings in the job logs" in text
    assert "provenance:" not in text  # no crate yet
