"""A rule script's uncaught failure: traceback in the log, a PHI-safe cause on the terminal."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def run_script(tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "job.log"
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from mskdx.io import log_to
            log_to({str(log)!r})
            """
        )
        + textwrap.dedent(body)
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    return proc, log.read_text()


def test_expected_failure_prints_its_message(tmp_path):
    proc, log = run_script(
        tmp_path,
        """
        from mskdx.errors import ConfigError
        raise ConfigError("studies.gout.input.labels: not set; expected a label sheet")
        """,
    )
    assert proc.returncode == 1
    assert "mskdx: ConfigError: studies.gout.input.labels: not set" in proc.stderr
    assert "Traceback" not in proc.stderr  # the traceback is in the log
    assert "Traceback" in log and "ConfigError" in log


def test_other_failure_names_type_and_place_not_its_text(tmp_path):
    proc, log = run_script(
        tmp_path,
        """
        open("/data/DOE^JOHN/19640312/IM_0001.dcm")
        """,
    )
    assert proc.returncode == 1
    assert "mskdx: FileNotFoundError at script.py:" in proc.stderr
    assert "DOE^JOHN" not in proc.stderr and "19640312" not in proc.stderr
    assert "FileNotFoundError" in log
