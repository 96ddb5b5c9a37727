"""Take one study from a PACS into a private temporary folder: DICOMweb or DIMSE.

The PACS is named by a URL:

- `http(s)://host:port/prefix` (e.g. `http://127.0.0.1:8042/dicom-web`): DICOMweb with
  `dicomweb-client`: QIDO-RS finds the study (by StudyInstanceUID or AccessionNumber) and its
  series, WADO-RS retrieves each series;
- `dimse://AET@host:port`, or the `AET@host:port` of `--dicom-send`: DIMSE with `pynetdicom`:
  C-FIND at STUDY level (Study Root) finds the study, C-GET retrieves it over the same
  association (no C-MOVE destination to configure on the PACS).

`retrieve_study` is a context manager: the files go to a fresh private folder (mode 0700) under
the folder the caller gives, named by counters only, and the folder is removed on exit unless
`keep=True`. The query's identifiers are PHI: the log names counts only; a `PacsError` says what
failed (unreachable, association rejected, no such study, more than one study for an
accession number) and keeps the identifier for its `terminal` text (shown on the terminal,
never logged to files).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mskdx.deploy.send import CALLING_AET, Peer, parse_peer
from mskdx.errors import ConfigError, MskdxError

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


class PacsError(MskdxError, RuntimeError):
    """The PACS could not give the study: unreachable, refused, not found, ambiguous."""


@dataclass(frozen=True)
class DicomWeb:
    url: str

    def __str__(self) -> str:
        return self.url


def parse_pacs(text: str) -> DicomWeb | Peer:
    """`http(s)://...` -> DicomWeb; `dimse://AET@host:port` or `AET@host:port` -> Peer."""
    text = str(text).strip()
    if text.startswith(("http://", "https://")):
        return DicomWeb(text.rstrip("/"))
    try:
        return parse_peer(text.removeprefix("dimse://"))
    except ConfigError:
        raise ConfigError(
            f"--from-pacs {text!r}: expected a DICOMweb URL (http://host:8042/dicom-web) or "
            "dimse://AET@host:port (called AE title of at most 16 characters)"
        ) from None


def _error(message: str, *, terminal: str | None = None) -> PacsError:
    err = PacsError(message)
    if terminal:
        err.terminal = terminal  # type: ignore[attr-defined]
    return err


def check_query(study_uid: str | None, accession: str | None) -> tuple[str, str]:
    """(key, value) of the query: exactly one of a StudyInstanceUID and an AccessionNumber."""
    if bool(study_uid) == bool(accession):
        raise ConfigError("--from-pacs needs exactly one of --study-uid and --accession")
    return ("StudyInstanceUID", study_uid) if study_uid else ("AccessionNumber", accession)  # type: ignore[return-value]


@contextmanager
def retrieve_study(
    pacs: str | DicomWeb | Peer,
    folder: PathLike,
    *,
    study_uid: str | None = None,
    accession: str | None = None,
    keep: bool = False,
    calling_aet: str = CALLING_AET,
    timeout: float = 30,
) -> Iterator[Path]:
    """Retrieve one study into a new private folder under `folder`; yield that folder."""
    target = parse_pacs(pacs) if isinstance(pacs, str) else pacs
    key, value = check_query(study_uid, accession)
    Path(folder).mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="pacs-", dir=folder))
    try:
        if isinstance(target, DicomWeb):
            count = _dicomweb(target, key, value, out, timeout)
        else:
            count = _dimse(target, key, value, out, calling_aet, timeout)
        log.info("PACS %s: 1 study, %d instances retrieved", _kind(target), count)
        yield out
    finally:
        if keep:
            log.info("PACS: the retrieved files are kept (private, holds PHI)")
        else:
            shutil.rmtree(out, ignore_errors=True)


def _kind(target) -> str:
    return "DICOMweb" if isinstance(target, DicomWeb) else "DIMSE"


def _not_found(target, key: str, value: str, n: int) -> PacsError:
    what = "no study" if n == 0 else f"{n} studies"
    hint = "" if n == 0 else "; give --study-uid to choose one"
    return _error(
        f"{target}: {what} for the given {key}{hint}",
        terminal=f"{key} queried on {target}: {value}",
    )


def _save(ds, out: Path, n: int) -> None:
    ds.save_as(out / f"{n:06d}.dcm", enforce_file_format=True)


def _dicomweb(target: DicomWeb, key: str, value: str, out: Path, timeout: float) -> int:
    import requests
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(target.url, timeout=timeout)
    client.set_http_retry_params(retry=False)  # one answer, now: the error says why
    try:
        studies = client.search_for_studies(search_filters={key: value})
        if len(studies) != 1:
            raise _not_found(target, key, value, len(studies))
        study_uid = studies[0]["0020000D"]["Value"][0]
        series = client.search_for_series(study_uid)
        n = 0
        for item in series:
            series_uid = item["0020000E"]["Value"][0]
            for ds in client.retrieve_series(study_uid, series_uid):
                n += 1
                _save(ds, out, n)
    except requests.ConnectionError as exc:
        raise _error(
            f"{target}: the DICOMweb server cannot be reached ({type(exc).__name__})"
        ) from None
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        raise _error(
            f"{target}: the DICOMweb server answered HTTP {code}",
            terminal=f"{key} queried on {target}: {value}",
        ) from None
    if n == 0:
        raise _error(f"{target}: the study has no instances", terminal=f"{key}: {value}")
    return n


def _dimse(target: Peer, key: str, value: str, out: Path, calling: str, timeout: float) -> int:
    from pydicom.dataset import Dataset
    from pynetdicom import AE, StoragePresentationContexts, build_role, evt
    from pynetdicom.sop_class import (
        StudyRootQueryRetrieveInformationModelFind as Find,
    )
    from pynetdicom.sop_class import (
        StudyRootQueryRetrieveInformationModelGet as Get,
    )

    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(Find)
    ae.add_requested_context(Get)
    storage = [cx.abstract_syntax for cx in StoragePresentationContexts][: 128 - 2]
    for uid in storage:
        ae.add_requested_context(uid)
    roles = [build_role(uid, scp_role=True) for uid in storage]
    stored: list[int] = []
    failed: list[str] = []

    def on_store(event) -> int:
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            stored.append(len(stored) + 1)
            _save(ds, out, len(stored))
        except Exception as exc:  # noqa: BLE001 - reported to the PACS and below
            failed.append(type(exc).__name__)
            return 0xC211
        return 0x0000

    answers: list = []
    handlers = [
        (evt.EVT_C_STORE, on_store),
        (evt.EVT_ACSE_RECV, lambda event: answers.append(event.primitive)),
    ]
    assoc = ae.associate(
        target.host, target.port, ae_title=target.aet, ext_neg=roles, evt_handlers=handlers
    )
    if not assoc.is_established:
        raise _error(f"{target}: {_refusal(assoc, answers)}")
    try:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = value if key == "StudyInstanceUID" else ""
        if key == "AccessionNumber":
            query.AccessionNumber = value
        found = []
        for status, identifier in assoc.send_c_find(query, Find):
            if status and status.Status in (0xFF00, 0xFF01) and identifier is not None:
                found.append(str(identifier.StudyInstanceUID))
        if len(set(found)) != 1:
            raise _not_found(target, key, value, len(set(found)))
        get = Dataset()
        get.QueryRetrieveLevel = "STUDY"
        get.StudyInstanceUID = found[0]
        final = None
        for status, _ in assoc.send_c_get(get, Get):
            final = status
        code = int(getattr(final, "Status", -1)) if final else -1
    finally:
        if assoc.is_established:
            assoc.release()
    if code not in (0x0000, 0xB000) or failed or not stored:
        raise _error(
            f"{target}: C-GET of the study ended with status 0x{code & 0xFFFF:04X}; "
            f"{len(stored)} instances received, {len(failed)} not written"
        )
    return len(stored)


def _refusal(assoc, answers) -> str:
    reject = next((p for p in answers if getattr(p, "result", None) in (0x01, 0x02)), None)
    if assoc.is_rejected and reject is not None:
        return (
            f"association rejected ({reject.result_str}; {reject.source_str}: {reject.reason_str})"
        )
    if not answers:
        return "no association: the PACS cannot be reached (nothing listening, or a firewall)"
    return "association aborted (no presentation context accepted)"
