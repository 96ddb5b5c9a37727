"""Send the DICOM results by STOW-RS (DICOMweb), with the C-STORE ledger of `mskdx.deploy.send`.

`stow_folder(folder, "http://host:8042/dicom-web")` stores the objects of the folder's
`index.csv` that the server has not stored yet, in one STOW-RS request per attempt
(`dicomweb_client.DICOMwebClient.store_instances`). The ledger `sent.csv` is the one C-STORE
writes, keyed by the URL: each object the response lists in its ReferencedSOPSequence is
recorded, so a retry (in this call, at most `retries` more attempts after a connection error or
an HTTP 5xx, or a later rerun) sends only the rest, with the same SOP Instance UIDs. A partial
failure (the response's FailedSOPSequence, HTTP 202 or 409) is a `SendError` naming the files
not stored and the failure reasons; the objects stay on disk.

`send_to(folder, target)` dispatches: a DICOMweb URL to STOW-RS, `AET@host:port` to C-STORE.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pandas as pd

from mskdx.deploy import send
from mskdx.deploy.send import LEDGER, SendError
from mskdx.io import write_table

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def is_dicomweb(target: str) -> bool:
    return str(target).strip().startswith(("http://", "https://"))


def send_to(folder: PathLike, target: str, **kwargs) -> int:
    """`--dicom-send`: STOW-RS for a DICOMweb URL, C-STORE for AET@host:port."""
    if is_dicomweb(target):
        return stow_folder(folder, target, **kwargs)
    return send.send_folder(folder, target, **kwargs)


class _Url(str):
    """The ledger's peer key of a DICOMweb server: its URL without a trailing slash."""


def stow_folder(
    folder: PathLike, url: str, *, retries: int = 2, wait: float = 1.0, timeout: float = 30
) -> int:
    """STOW-RS the objects of `folder` the server has not stored; return how many were stored."""
    import requests
    from dicomweb_client.api import DICOMwebClient
    from pydicom import dcmread

    folder, key = Path(folder), _Url(str(url).strip().rstrip("/"))
    client = DICOMwebClient(key, timeout=timeout)
    client.set_http_retry_params(retry=False)  # the loop below bounds the retries
    stored_now = 0
    for attempt in range(retries + 1):
        todo = send.pending(folder, key)
        if todo.empty:
            break
        datasets = [dcmread(folder / name) for name in todo["file"]]
        try:
            response = client.store_instances(datasets)
        except requests.ConnectionError:
            why = "the DICOMweb server cannot be reached"
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status == 409 or (400 <= status < 500):
                response = _response_dataset(exc.response)
                stored_now += _record(folder, key, todo, response)
                _raise_failed(key, todo, response, status)
            why = f"HTTP {status}"
        else:
            stored_now += _record(folder, key, todo, response)
            _raise_failed(key, todo, response, 200)
            continue
        if attempt < retries:
            log.warning("STOW-RS: %s (attempt %d of %d); retrying", why, attempt + 1, retries + 1)
            time.sleep(wait * 2**attempt)
            continue
        left = send.pending(folder, key)
        raise SendError(
            f"{key}: {why}; {len(left)} objects not stored after {retries + 1} attempts "
            f"(first: {left['file'].iloc[0]}); they stay in the DICOM folder and a rerun "
            "sends only those"
        )
    log.info("STOW-RS: %d objects stored by the DICOMweb server", stored_now)
    return stored_now


def _response_dataset(response):
    from pydicom import Dataset

    try:
        return Dataset.from_json(response.json())
    except Exception:  # noqa: BLE001 - a body that is not DICOM JSON: no detail
        return Dataset()


def _record(folder: Path, key: str, todo: pd.DataFrame, response) -> int:
    """Add the instances the response says were stored to the ledger; return how many."""
    stored = {
        str(item.ReferencedSOPInstanceUID)
        for item in (response.get("ReferencedSOPSequence") or [])
        if "ReferencedSOPInstanceUID" in item
    }
    rows = todo[todo["sop_instance_uid"].astype(str).isin(stored)]
    if rows.empty:
        return 0
    ledger = send.read_ledger(folder)
    new = pd.DataFrame(
        {
            "peer": str(key),
            "sop_instance_uid": rows["sop_instance_uid"].astype(str),
            "file": rows["file"],
        }
    )
    write_table(pd.concat([ledger, new], ignore_index=True), folder / LEDGER)
    return len(rows)


def _raise_failed(key: str, todo: pd.DataFrame, response, status: int) -> None:
    failed = {
        str(item.ReferencedSOPInstanceUID): int(item.get("FailureReason", 0) or 0)
        for item in (response.get("FailedSOPSequence") or [])
        if "ReferencedSOPInstanceUID" in item
    }
    missing = todo[~todo["sop_instance_uid"].astype(str).isin(_stored_in(response))]
    if not failed and (status < 400 or missing.empty):
        if not missing.empty:  # a 200 that lists nothing: trust it only if it lists something
            log.warning(
                "STOW-RS: the response lists %d objects as neither stored nor failed", len(missing)
            )
        return
    names = todo.loc[todo["sop_instance_uid"].astype(str).isin(failed), "file"].tolist()
    names = names or missing["file"].tolist()
    reasons = sorted({f"0x{code:04X}" for code in failed.values()}) or [f"HTTP {status}"]
    raise SendError(
        f"{key}: {len(names)} of {len(todo)} objects not stored ({', '.join(reasons)}): "
        f"{', '.join(names[:10])}{' ...' if len(names) > 10 else ''}; they stay in the DICOM "
        "folder and a rerun sends only those"
    )


def _stored_in(response) -> set[str]:
    return {
        str(item.ReferencedSOPInstanceUID)
        for item in (response.get("ReferencedSOPSequence") or [])
        if "ReferencedSOPInstanceUID" in item
    }
