"""The `mskdx` command line: `synth`, `predict`, `export`, `send`, `compare`, `verify`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mskdx.config.load import DEFAULT_CONFIG, load_config
from mskdx.errors import MskdxError

log = logging.getLogger(__name__)

CONFIG_HELP = (
    f"an overlay of the workflow's config ({DEFAULT_CONFIG.relative_to(DEFAULT_CONFIG.parents[1])},"
    " always read first, as Snakemake does); repeat to overlay more, later wins"
)


def _run_synth(args: argparse.Namespace) -> int:
    from mskdx.synth import synthesize

    config = load_config(args.configfile or [])
    synthetic = dict(config["synthetic"])
    if args.seed is not None:
        synthetic["seed"] = args.seed
    synthesize(args.study, Path(args.out), synthetic)
    return 0


def _add_synth(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="write a synthetic DICOM cohort",
        description="Write a synthetic DICOM cohort (dicom/, labels.csv, masks.npz) for a study.",
    )
    p.add_argument("--study", required=True, choices=["gout", "olt"])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--configfile",
        action="append",
        metavar="YAML",
        help=CONFIG_HELP,
    )
    p.add_argument("--seed", type=int, help="override synthetic.seed")
    p.set_defaults(func=_run_synth)


def _run_predict(args: argparse.Namespace) -> int:
    from mskdx.deploy.predict import predict_arm

    config = load_config(args.configfile) if args.configfile else None
    images, patients = predict_arm(
        args.dicom,
        args.out,
        config=config,
        study=args.study,
        arm=args.arm,
        results=args.results,
        private=args.private,
        gradcam=args.gradcam,
        threads=args.threads,
        dicom_out=args.dicom_out,
        dicom_send=args.dicom_send,
        dicom_maps=() if args.dicom_maps == "none" else (args.dicom_maps,),
        dicom_sc=args.dicom_sc,
        from_pacs=args.from_pacs,
        study_uid=args.study_uid,
        accession=args.accession,
        keep_retrieved=args.keep_retrieved,
    )
    calls = patients["call"] if "call" in patients else images["call"]
    flagged = (
        f"; {int(images['ood'].sum())} images flagged out of distribution (not to be used)"
        if "ood" in images
        else "; no out-of-distribution check (no ood.npz)"
    )
    print(
        f"{len(images)} images of {len(patients)} patients scored by {args.study}/{args.arm}; "
        f"{int(calls.sum())} of {len(calls)} called positive{flagged}. Tables: {args.out}"
        + (f"; DICOM results (hold PHI): {args.dicom_out}" if args.dicom_out else "")
    )
    return 0


def _add_trained_arm(p: argparse.ArgumentParser) -> None:
    """The options that name a trained arm: study, arm, the run's results (and, optionally, the
    configs it ran with: the arm's own settings, arm.json, are what runs)."""
    p.add_argument("--study", required=True, choices=["gout", "olt"])
    p.add_argument("--arm", required=True, help="e.g. blocks3 (gout) or T1 (olt)")
    p.add_argument(
        "--configfile",
        action="append",
        metavar="YAML",
        help="optional: the overlay(s) the workflow ran with, to be checked against the arm's "
        "own settings (results/<study>/models/<arm>/arm.json), which are used",
    )
    p.add_argument("--results", default="results", help="the workflow's results folder")


def _add_predict(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="diagnose new patients with a trained arm",
        description=(
            "Score a folder of DICOM studies (no label sheet) with every fold model of a trained "
            "arm, through the training data's own extraction and preprocessing. Writes "
            "images.csv, patients.csv and refused.csv (pseudonymous keys only) into --out."
        ),
    )
    _add_trained_arm(p)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--dicom", help="folder of DICOM files (any tree)")
    where.add_argument(
        "--from-pacs",
        metavar="URL",
        help="retrieve one study from a PACS instead: a DICOMweb URL (QIDO-RS + WADO-RS, e.g. "
        "http://pacs:8042/dicom-web) or dimse://AET@host:port (C-FIND + C-GET); the files go "
        "to a private temporary folder under PRIVATE/<study>/predict/<arm>/retrieved",
    )
    query = p.add_mutually_exclusive_group()
    query.add_argument("--study-uid", metavar="UID", help="the study's StudyInstanceUID")
    query.add_argument("--accession", metavar="ACC", help="the study's AccessionNumber")
    p.add_argument(
        "--keep-retrieved",
        action="store_true",
        help="keep the retrieved files (private, hold PHI); default: removed after the run",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--private",
        default="private",
        help="the private folder (PHI: the map of pseudonyms to patients and files, "
        "PRIVATE/<study>/predict/<arm>/file_map.csv)",
    )
    p.add_argument("--gradcam", type=int, default=0, metavar="N", help="Grad-CAM of N images")
    p.add_argument("--threads", type=int, help="default: the arm's train.threads")
    p.add_argument(
        "--dicom-out",
        metavar="DIR",
        help="also write the results as DICOM into DIR (an SR per patient, the Grad-CAM map "
        "of each image); they hold the source PHI: DIR must lie outside results/",
    )
    p.add_argument(
        "--dicom-maps",
        choices=["pm", "seg", "none"],
        default="pm",
        help="the Grad-CAM maps with --dicom-out: pm = Parametric Map where the source has a "
        "frame of reference, else Segmentation (default); seg = Segmentation; none",
    )
    p.add_argument(
        "--dicom-sc",
        action="store_true",
        help="with --dicom-out also the Grad-CAM overlays of the --gradcam images as "
        "Secondary Capture (for viewers without Parametric Map / Segmentation support)",
    )
    p.add_argument(
        "--dicom-send",
        metavar="URL|AET@HOST:PORT",
        help="send the DICOM results to this PACS: a DICOMweb URL (STOW-RS) or AET@host:port "
        "(C-STORE); bounded retries, and a rerun sends only what it has not stored",
    )
    p.set_defaults(func=_run_predict)


def _run_export(args: argparse.Namespace) -> int:
    from mskdx.deploy.export import export_trained_arm

    config = load_config(args.configfile) if args.configfile else None
    out, written = export_trained_arm(
        args.study, args.arm, results=args.results, out_dir=args.out, config=config
    )
    print(f"{len(written)} fold models of {args.study}/{args.arm} exported to {out}")
    return 0


def _add_export(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export an arm's fold models to ONNX and TorchScript",
        description=(
            "Write each fold model of a trained arm as ONNX and TorchScript (input: the "
            "normalised image, output: P(positive)) with a JSON of the preprocessing it expects."
        ),
    )
    _add_trained_arm(p)
    p.add_argument("--out", help="output folder (default: RESULTS/<study>/export/<arm>)")
    p.set_defaults(func=_run_export)


def _run_send(args: argparse.Namespace) -> int:
    from mskdx.deploy.stow import send_to

    sent = send_to(args.dicom, args.to)
    print(f"{sent} objects sent to {args.to}")
    return 0


def _add_send(subparsers) -> None:
    p = subparsers.add_parser(
        "send",
        help="send (again) the DICOM results of mskdx predict to a PACS",
        description="Store the objects of a --dicom-out folder that the PACS has not stored: "
        "STOW-RS to a DICOMweb URL, C-STORE to AET@host:port.",
    )
    p.add_argument("--dicom", required=True, metavar="DIR", help="the --dicom-out folder")
    p.add_argument("--to", required=True, metavar="URL|AET@HOST:PORT")
    p.set_defaults(func=_run_send)


def _run_compare(args: argparse.Namespace) -> int:
    from mskdx.evaluate.comparison import compare_predictions

    table = compare_predictions(
        args.predictions,
        reference=args.reference,
        threshold=args.threshold,
        out_dir=args.out,
        level=args.level,
    )
    print(f"{len(table)} arms compared; {Path(args.out, 'comparison.csv')} and comparison.md")
    return 0


def _add_compare(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare arms on anyone's predictions, images clustered by patient",
        description=(
            "Compare the arms of a long predictions CSV (columns patient, label, arm, prob; "
            "optional image, fold) with the clustered statistics of the workflow's tables: AUC "
            "(Obuchowski), ACC/SEN/SPE (clustered McNemar, design-effect Wilson CIs), each arm "
            "against the reference with Holm's adjustment, the image-independent values beside. "
            "Writes DIR/comparison.csv and comparison.md."
        ),
    )
    p.add_argument("predictions", metavar="PRED.csv")
    p.add_argument(
        "--reference",
        default="auto",
        help="the reference arm, named in advance; auto = the highest AUC on these data (the "
        "adjusted p-values then account for the choice)",
    )
    p.add_argument("--threshold", type=float, default=0.5, help="call = prob >= T (default 0.5)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    p.set_defaults(func=_run_compare)


def _run_verify(args: argparse.Namespace) -> int:
    from mskdx.provenance.verify import verify_command

    return verify_command(args.crate, repo_root=args.repo_root, write=print)


def _add_verify(subparsers) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check results/ against the run's RO-Crate (exit 0 only when all match)",
        description=(
            "Recompute the SHA-256 of every file the crate lists and report each changed, "
            "missing or unlisted file under results/, and any difference of commit, lock or "
            "configuration against this checkout."
        ),
    )
    p.add_argument("crate", nargs="?", default="results/ro-crate-metadata.json")
    p.add_argument("--repo-root", default=".", help="the checkout to compare with (default: .)")
    p.set_defaults(func=_run_verify)


#: Subcommand registrars; add one function per subcommand.
SUBCOMMANDS: list[Callable] = [
    _add_synth,
    _add_predict,
    _add_export,
    _add_send,
    _add_compare,
    _add_verify,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mskdx", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        )
    try:
        return int(args.func(args) or 0)
    except MskdxError as exc:
        log.error("%s", exc)
        if getattr(exc, "terminal", ""):  # the real paths behind the keys: terminal only
            log.error("%s", exc.terminal)
        return 2
    except OSError as exc:  # a folder that cannot be read or written: the path and the reason
        log.error("%s: %s", exc.filename or "", exc.strerror or exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
