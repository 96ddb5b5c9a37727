"""Validate a crate offline with rocrate-validator (PyPI roc-validator), Provenance Run Crate 0.5.

The validator fetches the crate's JSON-LD context over HTTP; with `--offline` it answers only
from its HTTP cache (a requests-cache SQLite file). `seed_context_cache` stores the RO-Crate
1.1 context shipped beside this module (`data/ro-crate-1.1-context.jsonld`: the
`rocrate/data/ro-crate.jsonld` of the rocrate 0.9.0 wheel, the last release that shipped 1.1;
current rocrate ships the 1.3 context, also stored) as a cached 200 response for its URL, so no
network is needed.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

CONTEXT_1_1 = Path(__file__).with_name("data") / "ro-crate-1.1-context.jsonld"
PROFILE = "provenance-run-crate-0.5"


def context_files() -> dict[str, Path]:
    """URL -> local file of the RO-Crate JSON-LD contexts: 1.1 (ours) and the rocrate package's."""
    import rocrate

    files = {}
    shipped = Path(rocrate.__file__).with_name("data") / "ro-crate.jsonld"
    for path in (CONTEXT_1_1, shipped):
        files[json.loads(path.read_text())["@id"]] = path
    return files


def seed_context_cache(cache_path: str | os.PathLike[str]) -> list[str]:
    """Store the RO-Crate contexts in the validator's HTTP cache at `cache_path`; their URLs."""
    import requests
    import requests_cache
    from urllib3 import HTTPResponse

    session = requests_cache.CachedSession(str(cache_path), backend="sqlite")
    urls = []
    for url, path in context_files().items():
        body = path.read_bytes()
        raw = HTTPResponse(body=body, status=200, preload_content=False, request_url=url)
        response = requests.Response()
        response.status_code = 200
        response.url = url
        response._content = body
        response.headers["Content-Type"] = "application/ld+json"
        response.raw = raw
        response.request = requests.Request("GET", url).prepare()
        session.cache.save_response(response)
        urls.append(url)
    session.close()
    return urls


def validate_offline(
    crate_dir: str | os.PathLike[str],
    cache_path: str | os.PathLike[str],
    report: str | os.PathLike[str],
    severity: str = "REQUIRED",
) -> dict:
    """Run `rocrate-validator validate --offline` on `crate_dir` for the Provenance Run Crate
    profile; the JSON report (`passed`, `issues`). Seeds the cache first."""
    seed_context_cache(cache_path)
    validator = Path(sys.executable).with_name("rocrate-validator")
    cmd = [
        str(validator), "-y", "validate", "--offline", "--cache-path", str(cache_path),
        "--skip-availability-check", "--no-auto-profile",
        "--profile-identifier", PROFILE, "--requirement-severity", severity,
        "-f", "json", "-o", str(report), str(crate_dir),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if not Path(report).is_file():
        raise RuntimeError(f"rocrate-validator wrote no report ({proc.returncode}):\n{proc.stderr}")
    return json.loads(Path(report).read_text())
