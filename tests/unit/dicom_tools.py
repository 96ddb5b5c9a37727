"""Independent DICOM tools for the deploy tests: dicom3tools, dcmtk and a real Orthanc.

Each is found on the PATH or installed from Debian with apt-get (as root), else the test is
skipped with the reason (as tests/workflow/browser.py does for chromium). Orthanc runs on free
loopback ports with a temporary storage folder and configuration (no authentication, no remote
access) and is stopped afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

APT_TIMEOUT_S = 900
#: Debian package of each tool
PACKAGES = {"dciodvfy": "dicom3tools", "dsrdump": "dcmtk", "Orthanc": "orthanc"}
ORTHANC_PATHS = ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")
DICOMWEB = "orthanc-dicomweb"
DICOMWEB_PLUGINS = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",)


def _which(tool: str) -> str | None:
    if tool == "Orthanc":
        found = [p for p in ORTHANC_PATHS if os.access(p, os.X_OK)]
        return found[0] if found else shutil.which("Orthanc")
    return shutil.which(tool)


def ensure_tool(tool: str) -> str:
    """The path of `tool`, installing its Debian package first; pytest.skip with the reason."""
    found = _which(tool)
    if found:
        return found
    package = PACKAGES[tool]
    if not shutil.which("apt-get"):
        pytest.skip(f"{tool} is missing and there is no apt-get to install {package}")
    if os.geteuid() != 0:
        pytest.skip(f"{tool} is missing; installing it needs root: apt-get install -y {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", package]):
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=APT_TIMEOUT_S, env=env
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"{' '.join(cmd)} ran over {APT_TIMEOUT_S} s")
        if proc.returncode != 0:
            pytest.skip(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-800:]}")
    found = _which(tool)
    if not found:
        pytest.skip(f"apt-get install {package} succeeded but {tool} is not on the PATH")
    return found


def dciodvfy_errors(path: Path) -> list[str]:
    """The lines dicom3tools' IOD checker reports as errors for `path` (warnings are allowed)."""
    proc = subprocess.run(
        [ensure_tool("dciodvfy"), str(path)], capture_output=True, text=True, timeout=120
    )
    lines = (proc.stdout + proc.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]


def dsrdump(path: Path) -> str:
    proc = subprocess.run(
        [ensure_tool("dsrdump"), str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"dsrdump {path.name} failed: {proc.stderr}"
    return proc.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Orthanc:
    def __init__(self, aet: str, dicom_port: int, http_port: int) -> None:
        self.aet, self.dicom_port, self.http_port = aet, dicom_port, http_port

    @property
    def peer(self) -> str:
        return f"{self.aet}@127.0.0.1:{self.dicom_port}"

    def get(self, path: str) -> bytes:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=30) as rsp:  # noqa: S310 - loopback only
            return rsp.read()

    @property
    def dicomweb(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    def upload(self, path: Path) -> None:
        """Store a DICOM file through the REST API."""
        request = urllib.request.Request(  # noqa: S310 - loopback only
            f"http://127.0.0.1:{self.http_port}/instances", data=path.read_bytes(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as rsp:  # noqa: S310
            rsp.read()

    def json(self, path: str):
        return json.loads(self.get(path))


@contextmanager
def orthanc(tmp: Path, aet: str = "MSKDXTEST", *, dicomweb: bool = False) -> Iterator[Orthanc]:
    """A real Orthanc on loopback ports with temporary storage; stopped on exit.

    `dicomweb`: with the DICOMweb plugin (Debian orthanc-dicomweb) at /dicom-web/, and the
    calling AE MSKDX allowed to C-FIND and C-GET."""
    binary = ensure_tool("Orthanc")
    server = Orthanc(aet, free_port(), free_port())
    storage = tmp / "orthanc-storage"
    storage.mkdir(parents=True)
    config = {
        "Name": "mskdx-test",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "DicomAet": aet,
        "DicomPort": server.dicom_port,
        "HttpPort": server.http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        "DicomAlwaysAllowStore": True,
        "Plugins": [],
        "StorageCompression": False,
    }
    if dicomweb:
        plugin = next((p for p in DICOMWEB_PLUGINS if os.path.exists(p)), None)
        if plugin is None:
            pytest.skip(f"the Orthanc DICOMweb plugin is missing: apt-get install -y {DICOMWEB}")
        config["Plugins"] = [plugin]
        config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
        config["DicomModalities"] = {"mskdx": ["MSKDX", "127.0.0.1", free_port()]}
    config_path = tmp / "orthanc.json"
    config_path.write_text(json.dumps(config))
    log = open(tmp / "orthanc.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([binary, str(config_path)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.json("/system")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        f"Orthanc did not start:\n{(tmp / 'orthanc.log').read_text()[-2000:]}"
                    )
                time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
