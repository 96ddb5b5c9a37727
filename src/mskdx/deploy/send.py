"""Send the DICOM results to a PACS: C-STORE with pynetdicom, and a ledger of what was stored.

`send_folder(folder, "AET@host:port")` reads the folder's `index.csv` (written by
`mskdx.deploy.dicom_out`), proposes one presentation context per SOP Class with the transfer
syntax the files are encoded in, and C-STOREs every object the peer has not stored yet. The
ledger `sent.csv` beside the objects (private: it lists SOP Instance UIDs) records each object a
peer answered with Success or a Warning status, after every store, so a rerun after a failure
sends only the rest. A refused or failed association, or a failure status, is a `SendError`
naming the peer and the status; the objects stay on disk.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mskdx.errors import ConfigError, MskdxError
from mskdx.io import read_table, write_table

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]

LEDGER = "sent.csv"
LEDGER_COLUMNS = ["peer", "sop_instance_uid", "file"]
CALLING_AET = "MSKDX"
_PEER = re.compile(r"^(?P<aet>[^@\\]{1,16})@(?P<host>[^:@]+):(?P<port>\d{1,5})$")


class SendError(MskdxError, RuntimeError):
    """The PACS did not take the objects: refused association, failure status, no connection."""


@dataclass(frozen=True)
class Peer:
    aet: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.aet}@{self.host}:{self.port}"


def parse_peer(text: str) -> Peer:
    """`AET@host:port` -> Peer; a ConfigError saying the expected form otherwise."""
    match = _PEER.match(str(text).strip())
    if not match or not 0 < int(match["port"]) < 65536 or not match["aet"].strip():
        raise ConfigError(
            f"--dicom-send {text!r}: expected AET@host:port (called AE title of at most 16 "
            "characters, e.g. ORTHANC@127.0.0.1:4242)"
        )
    return Peer(match["aet"].strip(), match["host"], int(match["port"]))


def read_ledger(folder: PathLike) -> pd.DataFrame:
    path = Path(folder, LEDGER)
    if not path.exists():
        return pd.DataFrame(columns=LEDGER_COLUMNS)
    return read_table(path)[LEDGER_COLUMNS].astype(str)


def pending(folder: PathLike, peer: Peer) -> pd.DataFrame:
    """Rows of the folder's index that `peer` has not stored yet."""
    if not Path(folder, "index.csv").is_file():
        raise ConfigError(
            f"{folder}: no index.csv; expected the --dicom-out folder of mskdx predict"
        )
    index = read_table(Path(folder, "index.csv")).astype({"sop_instance_uid": str})
    ledger = read_ledger(folder)
    stored = set(ledger.loc[ledger["peer"] == str(peer), "sop_instance_uid"])
    return index[~index["sop_instance_uid"].isin(stored)]


def send_folder(
    folder: PathLike, peer: Peer | str, *, calling_aet: str = CALLING_AET, timeout: float = 30
) -> int:
    """C-STORE the objects of `folder` that `peer` has not stored; return how many were sent."""
    from pydicom import dcmread

    peer = parse_peer(peer) if isinstance(peer, str) else peer
    folder = Path(folder)
    todo = pending(folder, peer)
    if todo.empty:
        log.info("DICOM send: %s already holds every object; nothing to send", peer)
        return 0
    datasets = [dcmread(folder / name) for name in todo["file"]]
    assoc = _associate(peer, datasets, calling_aet, timeout)
    ledger = read_ledger(folder)
    failures: list[str] = []
    try:
        for name, ds in zip(todo["file"], datasets, strict=True):
            status = assoc.send_c_store(ds)
            code = int(getattr(status, "Status", -1)) if status else -1
            if code == 0x0000 or 0xB000 <= code <= 0xBFFF:
                row = {"peer": str(peer), "sop_instance_uid": str(ds.SOPInstanceUID), "file": name}
                ledger = pd.concat([ledger, pd.DataFrame([row])], ignore_index=True)
                write_table(ledger, folder / LEDGER)
            else:
                failures.append(_status_text(code))
    finally:
        if assoc.is_established:
            assoc.release()
    sent = len(todo) - len(failures)
    log.info("DICOM send: %d of %d objects stored by %s", sent, len(todo), peer)
    if failures:
        raise SendError(
            f"{peer}: {len(failures)} of {len(todo)} objects not stored (statuses: "
            f"{', '.join(sorted(set(failures)))}); they stay in the DICOM folder and a rerun "
            "sends only those"
        )
    return sent


def _status_text(code: int) -> str:
    if code < 0:
        return "no response (connection lost or timed out)"
    from pynetdicom.status import code_to_category

    return f"0x{code:04X} {code_to_category(code)}"


def _associate(peer: Peer, datasets, calling_aet: str, timeout: float):
    """An established association with one context per (SOP Class, transfer syntax) in use."""
    from pynetdicom import AE, evt

    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    contexts = sorted(
        {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets}
    )
    if len(contexts) > 128:
        raise SendError(f"{peer}: {len(contexts)} SOP class/transfer syntax pairs; at most 128")
    for sop_class, syntax in contexts:
        ae.add_requested_context(sop_class, syntax)
    answers: list = []
    handlers = [(evt.EVT_ACSE_RECV, lambda event: answers.append(event.primitive))]
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.aet, evt_handlers=handlers)
    if assoc.is_established:
        refused = [cx for cx in assoc.rejected_contexts]
        if refused:
            log.warning("DICOM send: %s refused %d presentation contexts", peer, len(refused))
        return assoc
    reject = next((p for p in answers if getattr(p, "result", None) in (0x01, 0x02)), None)
    if assoc.is_rejected and reject is not None:
        why = (
            f"association rejected ({reject.result_str}; {reject.source_str}: {reject.reason_str})"
        )
    elif not answers:
        why = "no association: the peer cannot be reached (nothing listening, or a firewall)"
    else:
        why = "association aborted (no presentation context accepted for these objects)"
    raise SendError(f"{peer}: {why}; the objects stay on disk, nothing was sent")
