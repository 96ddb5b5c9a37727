"""The clinical loop against a real Orthanc with its DICOMweb plugin on loopback: a study is
retrieved by UID (and accession) over DICOMweb and over DIMSE, its Grad-CAM Segmentation and SR
go back by STOW-RS and by C-STORE without duplicates, QIDO finds them in the source study and
their references resolve; unreachable, rejected, unknown and partial failures are clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from dicom_factory import US_IMAGE, image_dataset, rgb_image, write
from dicom_tools import dciodvfy_errors, free_port, orthanc
from pydicom.dataset import Dataset

from mskdx.deploy import dicom_out, maps, pacs, send, stow
from mskdx.deploy.sources import Source
from mskdx.errors import ConfigError

pytest.importorskip("dicomweb_client")

MODEL = dicom_out.ModelInfo(
    study="gout",
    arm="blocks3",
    version="0.0+abcdef123456",
    folds=(0, 1),
    positive="gout",
    negative="control",
    image_threshold=0.5,
    patient_threshold=0.3,
)


def _study(folder: Path, accession: str, n: int, seed: int) -> list[Path]:
    study = pydicom.uid.generate_uid()
    paths = []
    for k in range(n):
        ds = image_dataset(rgb_image(40, 60, seed=seed + k), photometric="RGB", sop_class=US_IMAGE)
        ds.StudyInstanceUID, ds.AccessionNumber = study, accession
        ds.PatientSex, ds.StudyID, ds.StudyTime, ds.ReferringPhysicianName = "M", "1", "1200", ""
        ds.InstanceNumber = k + 1
        paths.append(write(ds, folder / f"{accession}_{k}.dcm"))
    return paths


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("pacs")
    mine = _study(base / "src", "ACC0001", 2, 1)
    other = _study(base / "src", "ACC0002", 1, 9)  # another study the queries must not return
    with orthanc(base / "orthanc", dicomweb=True) as server:
        for path in mine + other:
            server.upload(path)
        yield server, mine


def _uids(folder: Path) -> set[str]:
    return {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        for p in folder.rglob("*.dcm")
    }


def _study_uid(paths) -> str:
    return str(pydicom.dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID)


@pytest.mark.parametrize("way", ["dicomweb", "dimse"])
def test_a_study_is_retrieved_by_uid_into_a_private_folder_removed_afterwards(
    server, way, tmp_path, caplog
):
    orthanc_, mine = server
    url = orthanc_.dicomweb if way == "dicomweb" else f"dimse://{orthanc_.peer}"
    study = _study_uid(mine)
    caplog.set_level(logging.INFO, logger="mskdx.deploy.pacs")
    with pacs.retrieve_study(url, tmp_path, study_uid=study) as folder:
        assert _uids(folder) == _uids(mine[0].parent) - _uids_of_other(mine)
        assert folder.parent == tmp_path and (folder.stat().st_mode & 0o077) == 0
    assert not folder.exists()
    assert "1 study, 2 instances retrieved" in caplog.text and study not in caplog.text


def _uids_of_other(mine) -> set[str]:
    folder = mine[0].parent
    return {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        for p in folder.glob("ACC0002_*.dcm")
    }


@pytest.mark.parametrize("way", ["dicomweb", "dimse"])
def test_by_accession_and_kept_on_request(server, way, tmp_path):
    orthanc_, mine = server
    url = orthanc_.dicomweb if way == "dicomweb" else orthanc_.peer  # the AET@host:port form
    with pacs.retrieve_study(url, tmp_path, accession="ACC0001", keep=True) as folder:
        pass
    assert len(_uids(folder)) == 2


@pytest.mark.parametrize("way", ["dicomweb", "dimse"])
def test_unknown_study_unreachable_and_rejected_are_clear_errors(server, way, tmp_path):
    orthanc_, _ = server
    url = orthanc_.dicomweb if way == "dicomweb" else orthanc_.peer
    with pytest.raises(pacs.PacsError, match="no study for the given StudyInstanceUID") as err:
        with pacs.retrieve_study(url, tmp_path, study_uid="1.2.3.999"):
            pass
    assert "1.2.3.999" in err.value.terminal and "1.2.3.999" not in str(err.value)
    assert not list(tmp_path.iterdir())  # nothing left behind
    gone = (
        f"http://127.0.0.1:{free_port()}/dicom-web"
        if way == "dicomweb"
        else (f"GONE@127.0.0.1:{free_port()}")
    )
    with pytest.raises(pacs.PacsError, match="cannot be reached"):
        with pacs.retrieve_study(gone, tmp_path, study_uid="1.2.3"):
            pass
    if way == "dimse":
        wrong = orthanc_.peer.replace(orthanc_.aet, "NOTTHEPACS")
        with pytest.raises(pacs.PacsError, match="association rejected"):
            with pacs.retrieve_study(wrong, tmp_path, study_uid="1.2.3"):
                pass


def test_bad_urls_and_queries_are_refused():
    with pytest.raises(ConfigError, match="expected a DICOMweb URL"):
        pacs.parse_pacs("ftp://pacs")
    with pytest.raises(ConfigError, match="exactly one of --study-uid and --accession"):
        with pacs.retrieve_study("http://127.0.0.1:1/dicom-web", ".", study_uid="1", accession="2"):
            pass


def _results(folder: Path, out: Path) -> pd.DataFrame:
    """Grad-CAM Segmentations (fake maps) and the SR of the retrieved study, in `out`."""
    sources, datasets, cams, boxes, rows = {}, {}, {}, {}, []
    for k, path in enumerate(sorted(folder.glob("*.dcm"))):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        image_id = f"I-{k:012x}"
        sources[image_id] = Source(
            image_id, "P-0000000001", path, f"F-{k:012x}", 0, str(ds.SOPClassUID),
            str(ds.SOPInstanceUID), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), 1,
        )  # fmt: skip
        datasets[image_id], boxes[image_id] = ds, (5, 5, 55, 35)
        cams[image_id] = np.outer(np.hanning(8), np.hanning(16)).astype(np.float32)
        rows.append({"patient": "P-0000000001", "image_id": image_id, "prob": 0.2 + 0.5 * k})
    images = pd.DataFrame(rows).assign(call=lambda t: (t["prob"] > 0.5).astype(int))
    patients = pd.DataFrame(
        {"patient": ["P-0000000001"], "mean_prob": [images["prob"].mean()], "share": [0.5]}
    ).assign(threshold=0.3, call=1)
    made = maps.build_maps(cams, sources, datasets, boxes, MODEL, kinds=("pm",))  # SC: seg
    return dicom_out.write_dicom_results(out, sources, images, patients, MODEL, maps=made)


def test_results_go_back_into_the_source_study_by_stow_and_c_store(server, tmp_path):
    from dicomweb_client.api import DICOMwebClient

    orthanc_, mine = server
    study = _study_uid(mine)
    out = tmp_path / "dicom"
    with pacs.retrieve_study(orthanc_.dicomweb, tmp_path, study_uid=study) as folder:
        index = _results(folder, out)
    assert sorted(index["kind"]) == ["seg", "seg", "sr"]
    for name in index["file"]:
        assert dciodvfy_errors(out / name) == [], name
    before = len(orthanc_.json("/instances"))
    assert stow.send_to(out, orthanc_.dicomweb) == 3
    assert stow.send_to(out, orthanc_.dicomweb) == 0  # the ledger: nothing twice
    assert stow.send_to(out, orthanc_.peer) == 3  # C-STORE: its own ledger key
    assert len(orthanc_.json("/instances")) == before + 3  # same UIDs: no duplicates
    client = DICOMwebClient(orthanc_.dicomweb)
    found = {
        i["00080018"]["Value"][0]: i["00080016"]["Value"][0]
        for i in client.search_for_instances(study)
    }
    assert set(index["sop_instance_uid"]) <= set(found)
    # every reference resolves in the study: the SR's evidence, the maps' source images
    sr_uid = index.loc[index["kind"] == "sr", "sop_instance_uid"].iloc[0]
    sr_series = client.search_for_instances(study, search_filters={"SOPInstanceUID": sr_uid})
    sr = client.retrieve_instance(study, sr_series[0]["0020000E"]["Value"][0], sr_uid)
    evidence = {
        item.ReferencedSOPInstanceUID
        for s in sr.CurrentRequestedProcedureEvidenceSequence
        for series in s.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    assert evidence <= set(found) and len(evidence) == 4  # 2 sources + 2 maps
    for row in index[index["kind"] == "seg"].itertuples():
        seg = pydicom.dcmread(out / row.file)
        ref = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
        assert ref.SourceImageSequence[0].ReferencedSOPInstanceUID in found
        assert seg.StudyInstanceUID == study


def test_stow_partial_failure_names_the_files_and_unreachable_is_bounded(server, tmp_path):
    index = pd.DataFrame(
        {"file": ["P-1/SR_a.dcm", "P-1/SEG_a.dcm"], "sop_instance_uid": ["1.2.1", "1.2.2"]}
    )
    response = Dataset()
    ok, bad = Dataset(), Dataset()
    ok.ReferencedSOPInstanceUID, bad.ReferencedSOPInstanceUID = "1.2.1", "1.2.2"
    bad.FailureReason = 0xA700
    response.ReferencedSOPSequence, response.FailedSOPSequence = [ok], [bad]
    response = Dataset.from_json(response.to_json())  # as the server's JSON is read
    with pytest.raises(send.SendError, match=r"1 of 2 objects not stored \(0xA700\): P-1/SEG_a"):
        stow._raise_failed("http://pacs/dicom-web", index, response, 202)
    ds = image_dataset(rgb_image(4, 4), photometric="RGB", sop_instance="1.2.1")
    write(ds, tmp_path / "P-1" / "SR_a.dcm")
    (tmp_path / "index.csv").write_text("file,sop_instance_uid\nP-1/SR_a.dcm,1.2.1\n")
    gone = f"http://127.0.0.1:{free_port()}/dicom-web"
    with pytest.raises(send.SendError, match="cannot be reached; 1 objects not stored after 2"):
        stow.stow_folder(tmp_path, gone, retries=1, wait=0)
