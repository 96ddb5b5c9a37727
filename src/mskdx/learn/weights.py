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

from mskdx.learn import models

log = logging.getLogger(__name__)

#: the shortest hash prefix in a file name that counts as a checksum (torchvision uses 8)
MIN_HASH_DIGITS = 8


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
        raise models.WeightsUnavailableError(
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
    cache_file = models.resnet50_cache_file()
    explicit = weights_path or os.environ.get(models.RESNET50_WEIGHTS_ENV) or None
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            source = "weights_path" if weights_path else models.RESNET50_WEIGHTS_ENV
            raise models.WeightsUnavailableError(
                models._missing_weights_message(cache_file, f"{source}={path} does not exist")
            )
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
            raise models.WeightsUnavailableError(f"{cache_file}: no hash in the file name")
        verify(cache_file)
        return cache_file
    if not download:
        return None
    log.info("ResNet50 ImageNet weights not cached at %s; downloading", cache_file)
    try:
        models.RESNET50_WEIGHTS.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # no network, proxy, disk full: all end in the same advice
        raise models.WeightsUnavailableError(
            models._missing_weights_message(
                cache_file,
                f"{cache_file} is missing and download failed ({type(exc).__name__}: {exc})",
            )
        ) from exc
    return cache_file
