"""The `mskdx` command line: `mskdx <subcommand> ...` (currently: synth)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import yaml

from mskdx.errors import ConfigError, MskdxError

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("config/config.yaml")


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """Return `base` updated by `override` recursively (mappings merge, other values replace)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(paths: Sequence[str | Path]) -> dict:
    """Load YAML config files and deep-merge them in order, later ones winning (as Snakemake)."""
    config: dict = {}
    for path in paths:
        try:
            with open(path) as fh:
                data = yaml.safe_load(fh) or {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: top level is {type(data).__name__}; expected a mapping")
        config = deep_merge(config, data)
    return config


def _run_synth(args: argparse.Namespace) -> int:
    from mskdx.synth import synthesize

    config = load_config(args.configfile or [DEFAULT_CONFIG])
    if "synthetic" not in config:
        raise ConfigError(f"{', '.join(map(str, args.configfile))}: no 'synthetic' section")
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
        help=f"config file; repeat to overlay (later wins). Default: {DEFAULT_CONFIG}",
    )
    p.add_argument("--seed", type=int, help="override synthetic.seed")
    p.set_defaults(func=_run_synth)


#: Subcommand registrars; add one function per subcommand.
SUBCOMMANDS: list[Callable] = [_add_synth]


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
        return 2


if __name__ == "__main__":
    sys.exit(main())
