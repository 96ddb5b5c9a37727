"""Pretrained weight files: where they are, whether they are intact, and the download.

The workflow calls `resnet50_file` while it builds the DAG (the input function of `train_fold`
for an arm with `weights: imagenet`), so a missing or damaged file stops the run before any job
starts; the training job calls it again before it loads the file.

A file is looked for, in order, at the arm's `weights_path`, the environment variable
MSKDX_RESNET50_WEIGHTS and torch hub's cache file (`<TORCH_HOME>/hub/checkpoints/
resnet50-0676ba61.pth`); only when none is given and the cache file is missing is torchvision's
own download tried (`Weights.get_state_dict(check_hash=True)`, into that cache).

Checksums follow torch hub's convention (`torch.hub.HASH_REGEX`): a file named
`<name>-<hex>.pth` must have a SHA-256 that starts with `<hex>`; torchvision names its files
so (`resnet50-0676ba61.pth`). A local file named that way with 8 or more hex digits is verified;
one named otherwise cannot be and is used with a warning. The cache file must match the hash in
its name.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch
import torchvision

from mskdx.errors import ConfigError, MskdxError

log = logging.getLogger(__name__)

#: the shortest hash prefix in a file name that counts as a checksum (torchvision uses 8)
MIN_HASH_DIGITS = 8
#: the OLT paper's ImageNet weights (V1: what `pretrained=True` meant when it was written)
RESNET50_WEIGHTS = torchvision.models.ResNet50_Weights.IMAGENET1K_V1
RESNET50_WEIGHTS_ENV = "MSKDX_RESNET50_WEIGHTS"


class WeightsUnavailableError(MskdxError, RuntimeError):
    """Pretrained weights that are neither cached nor downloadable, or a damaged file."""


def hub_cache_file(weights=RESNET50_WEIGHTS) -> Path:
    """Where torchvision looks for a weights enum member's file (the torch hub cache)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def resnet50_cache_file() -> Path:
    """Path where torchvision looks for the ImageNet ResNet50 weights (torch hub cache)."""
    return hub_cache_file(RESNET50_WEIGHTS)


def missing_weights_message(weights, what: str, reason: str, *, env: str | None = None) -> str:
    """The one message for pretrained weights that cannot be had: which file to place where.

    `weights` is the torchvision enum member, `what` names the network (e.g. "ResNet50").
    """
    cache_file = hub_cache_file(weights)
    url = weights.url
    if env:
        alternative = f"point {env} (or the arm's weights_path) at a copy of it"
    else:
        alternative = "give the arm `weights: <path of that file>`"
    return (
        f"ImageNet weights for {what} (torchvision {weights}) are not available: {reason}. "
        f"Put the file {cache_file.name} at {cache_file} (download it from {url}, e.g. "
        f"`mkdir -p {cache_file.parent} && curl -L -o {cache_file} {url}`; the folder follows "
        f"TORCH_HOME, default ~/.cache/torch), or {alternative}, or set the arm's "
        "`weights: none` to train from scratch."
    )


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict from a file (also one saved as {"state_dict": ...} or {"model": ...}).

    Raises:
        ConfigError: no such file, not a torch file, or not a mapping of names to tensors.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"weights={str(path)!r}: no such file; expected imagenet, none or a path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable torch state dict ({exc})") from exc
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ConfigError(f"{path}: not a state dict; expected a mapping of names to tensors")
    return state


def hash_prefix(path: str | os.PathLike[str]) -> str | None:
    """The SHA-256 prefix a file name carries by torch hub's convention, or None."""
    match = torch.hub.HASH_REGEX.search(Path(path).name)
    if match is None or len(match.group(1)) < MIN_HASH_DIGITS:
        return None
    return match.group(1)


def sha256(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify(path: str | os.PathLike[str]) -> bool:
    """Check a weight file against the hash in its name; False if its name carries none.

    Raises:
        WeightsUnavailableError: the file's SHA-256 does not start with the hash in its name.
    """
    expected = hash_prefix(path)
    if expected is None:
        return False
    actual = sha256(path)
    if not actual.startswith(expected):
        raise WeightsUnavailableError(
            f"{path}: SHA-256 {actual[:16]}... does not start with {expected}, the hash in the "
            "file's name (torch hub's convention); the file is damaged or not the one named: "
            "replace it"
        )
    return True


def resnet50_file(
    weights_path: str | os.PathLike[str] | None = None, *, download: bool = True
) -> Path | None:
    """The verified local file of the ImageNet ResNet50 weights, downloaded if need be.

    Looks at `weights_path`, MSKDX_RESNET50_WEIGHTS and torch hub's cache file, in that order;
    with none given and no cache file, downloads into the cache (hash checked) when `download`,
    else returns None.

    Raises:
        WeightsUnavailableError: a named file that does not exist, a file whose hash does not
            match its name, or a failed download; the message says which file to place where.
    """
    cache_file = resnet50_cache_file()
    explicit = weights_path or os.environ.get(RESNET50_WEIGHTS_ENV) or None
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            source = "weights_path" if weights_path else RESNET50_WEIGHTS_ENV
            raise WeightsUnavailableError(_missing_resnet50(f"{source}={path} does not exist"))
        if not verify(path):
            log.warning(
                "%s: name without a hash (torch hub's <name>-<hex>.pth), so not verified; "
                "name it like %s to have it checked",
                path,
                cache_file.name,
            )
        return path
    if cache_file.is_file():
        if hash_prefix(cache_file) is None:  # torchvision's file names always carry one
            raise WeightsUnavailableError(f"{cache_file}: no hash in the file name")
        verify(cache_file)
        return cache_file
    if not download:
        return None
    log.info("ResNet50 ImageNet weights not cached at %s; downloading", cache_file)
    try:
        RESNET50_WEIGHTS.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # no network, proxy, disk full: all end in the same advice
        raise WeightsUnavailableError(
            _missing_resnet50(
                f"{cache_file} is missing and download failed ({type(exc).__name__}: {exc})"
            )
        ) from exc
    return cache_file


def _missing_resnet50(reason: str) -> str:
    return missing_weights_message(RESNET50_WEIGHTS, "ResNet50", reason, env=RESNET50_WEIGHTS_ENV)


def resnet50_imagenet_state(weights_path: str | os.PathLike[str] | None = None) -> dict:
    """Load the ImageNet ResNet50 state dict (1000-class head) from `resnet50_file`."""
    path = resnet50_file(weights_path)
    log.info("ResNet50 ImageNet weights from %s", path)
    try:
        return read_state_dict(path)
    except ConfigError as exc:
        raise WeightsUnavailableError(str(exc)) from None
