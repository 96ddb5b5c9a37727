"""Checkpoints are byte-reproducible: the same state saved twice gives the same bytes.

torch.save names the entries of its zip archive after the file it is given; saved to the random
temporary name of an atomic write, two runs of the same job gave different bytes. Both writers
save through a file handle, so the entries are named `archive/...` whatever the file is called.
"""

from __future__ import annotations

import zipfile

import torch
from torch import nn

from mskdx.learn.augment import Normalization
from mskdx.learn.checkpoints import load_last, save_final, save_last


def tiny_model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.LazyLinear(2))


def write_final(path, model) -> bytes:
    save_final(
        path,
        model=model,
        epoch=2,
        epochs=3,
        select="val_auc",
        val_auc=0.75,
        args={"seed": 1},
        arm_spec={"architecture": "resnet_blocks", "blocks": 2},
        normalization=Normalization("image_zscore"),
        class_weights=None,
        shape=(8, 8),
    )
    return path.read_bytes()


def write_last(path, model, optimizer) -> bytes:
    save_last(
        path,
        model=model,
        optimizer=optimizer,
        epoch=2,
        args={"seed": 1},
        rng={"torch": torch.get_rng_state()},
        best=None,
        history=[{"epoch": 1, "loss": 0.5}],
    )
    return path.read_bytes()


def test_final_checkpoint_saved_twice_is_the_same_bytes(tmp_path):
    model = tiny_model()
    model(torch.zeros(1, 3, 8, 8))  # materialise the lazy layer
    first = write_final(tmp_path / "a" / "checkpoint_final.pt", model)
    again = write_final(tmp_path / "b" / "checkpoint_final.pt", model)
    assert first == again
    with zipfile.ZipFile(tmp_path / "a" / "checkpoint_final.pt") as archive:
        names = archive.namelist()
    assert names and all(n.startswith("archive/") for n in names), names[:5]
    assert not any(".part" in n for n in names)


def test_last_checkpoint_saved_twice_is_the_same_bytes_and_resumes(tmp_path):
    model = tiny_model()
    model(torch.zeros(1, 3, 8, 8))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    path = tmp_path / "checkpoint_last.pt"
    first = write_last(path, model, optimizer)
    assert write_last(path, model, optimizer) == first
    state = load_last(path, {"seed": 1})
    assert state is not None and state["epoch"] == 2
