"""Grad-CAM through pytorch_grad_cam on hand-built CNNs, and the localisation scores."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps
from torch import nn

from mskdx.evaluate.localisation import (
    SCORE_COLUMNS,
    SUMMARY_COLUMNS,
    localisation_scores,
    select_samples,
    summarise_localisation,
)
from mskdx.learn.gradcam import compute_cams

H, W = 32, 48  # non-square, so a swapped height/width shows


class SquareModel(nn.Module):
    """Logit of class 1 = mean intensity inside a fixed square; class 0 = its negative.

    grey (1x1 conv) -> 4x4 average pool -> multiply by the square (the Grad-CAM layer) -> mean.
    The activations at the target layer are non-zero only inside the square, at 1/4 resolution,
    so Grad-CAM must come back upsampled to H x W with its energy in the square.
    """

    def __init__(self, rows: slice, cols: slice) -> None:
        super().__init__()
        self.grey = nn.Conv2d(3, 1, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(4)
        low = torch.zeros(1, 1, H // 4, W // 4)
        low[..., rows.start // 4 : rows.stop // 4, cols.start // 4 : cols.stop // 4] = 1.0
        self.square = SquareGate(low)
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.grey.weight.fill_(1 / 3)
            self.head.weight.copy_(torch.tensor([[-1.0], [1.0]]))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.square(self.pool(self.grey(x)))
        return self.head(features.mean(dim=(2, 3)))


class SquareGate(nn.Module):
    def __init__(self, gate: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("gate", gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate


class BlobDetector(nn.Module):
    """A translation-invariant bright-blob detector: local mean above 0.5, pooled globally."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, kernel_size=3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.conv.weight.fill_(1 / 27)
            self.conv.bias.fill_(-0.5)
            self.head.weight.copy_(torch.tensor([[-10.0], [10.0]]))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.conv(x)).mean(dim=(2, 3)))


SQUARE_ROWS, SQUARE_COLS = slice(4, 16), slice(28, 44)  # top right, on the 4x4 grid


def _mask(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[rows, cols] = 1
    return mask


def _noise_batch(n: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    grey = 0.5 + 0.1 * rng.standard_normal((n, 1, H, W))
    return torch.tensor(np.repeat(grey, 3, axis=1), dtype=torch.float32)


def test_cam_of_fixed_square_lies_in_square() -> None:
    model = SquareModel(SQUARE_ROWS, SQUARE_COLS)
    cams = compute_cams(model, _noise_batch(3), model.square)
    assert cams.shape == (3, H, W) and cams.dtype == np.float32
    assert cams.min() >= 0 and cams.max() <= 1
    inside = _mask(SQUARE_ROWS, SQUARE_COLS).astype(bool)
    elsewhere = _mask(slice(20, 32), slice(0, 16))
    for cam in cams:
        r, c = np.unravel_index(np.argmax(cam), cam.shape)
        assert inside[r, c]
        assert cam.max() == pytest.approx(1.0, abs=1e-5)
    scores = localisation_scores(cams, np.stack([inside.astype(np.uint8)] * 3))
    assert (scores["energy_inside"] > 0.8).all()
    assert scores["pointing_hit"].all()
    wrong = localisation_scores(cams, np.stack([elsewhere] * 3))
    assert (wrong["energy_inside"] < 0.02).all()
    assert not wrong["pointing_hit"].any()


def test_cam_follows_the_blob_in_each_image() -> None:
    places = [
        (slice(2, 8), slice(4, 10)),
        (slice(20, 26), slice(36, 42)),
        (slice(12, 18), (slice(20, 26))),
    ]
    rng = np.random.default_rng(1)
    grey = 0.2 + 0.02 * rng.standard_normal((len(places), H, W))
    for i, (rows, cols) in enumerate(places):
        grey[i, rows, cols] = 1.0
    batch = torch.tensor(np.repeat(grey[:, None], 3, axis=1), dtype=torch.float32)
    model = BlobDetector()
    cams = compute_cams(model, batch, model.act, batch_size=2)
    masks = np.stack([_mask(r, c) for r, c in places])
    scores = localisation_scores(cams, masks)
    assert scores["pointing_hit"].all()
    assert (scores["energy_inside"] > 0.5).all()
    assert (scores["energy_inside"] > 5 * scores["mask_fraction"]).all()  # far above chance
    # Each CAM points at its own image's blob, not a neighbour's.
    crossed = localisation_scores(cams, np.roll(masks, 1, axis=0))
    assert not crossed["pointing_hit"].any()


def test_class_without_evidence_gives_zero_map_scored_as_miss() -> None:
    model = BlobDetector()
    batch = _noise_batch(1)
    batch[:, :, 2:8, 4:10] = 1.0
    cams = compute_cams(model, batch, model.act, target_class=0)
    assert np.all(cams == 0)
    scores = localisation_scores(cams, _mask(slice(2, 8), slice(4, 10))[None])
    assert math.isnan(scores.loc[0, "energy_inside"]) and not scores.loc[0, "pointing_hit"]


def test_resnet_under_inference_mode_is_deterministic_and_restores_state() -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=2)
    model.train()
    model.fc.weight.requires_grad_(False)
    layer = model.layer4  # what mskdx.learn.gradcam.cam_layer picks
    with torch.inference_mode():
        batch = torch.randn(3, 3, 64, 64)
        first = compute_cams(model, batch, layer, batch_size=3)
    second = compute_cams(model, batch, layer, batch_size=1)
    assert first.shape == (3, 64, 64)
    assert np.allclose(first, second, atol=1e-5)
    assert np.array_equal(first, compute_cams(model, batch, layer, batch_size=3))
    assert model.training  # restored
    assert not model.fc.weight.requires_grad and model.conv1.weight.requires_grad
    assert not model.layer4._forward_hooks  # the library's hooks are removed


def test_compute_cams_rejects_bad_input() -> None:
    model = BlobDetector()
    with pytest.raises(ValueError, match="expected \\(N, 3, H, W\\)"):
        compute_cams(model, torch.zeros(2, 1, H, W), model.act)
    with pytest.raises(ValueError, match="not a submodule"):
        compute_cams(model, _noise_batch(1), nn.ReLU())
    with pytest.raises(ValueError, match="target_class 5"):
        compute_cams(model, _noise_batch(1), model.act, target_class=5)
    assert compute_cams(model, _noise_batch(0), model.act).shape == (0, H, W)


# -- localisation scores on constructed maps ------------------------------------------------------


def _constructed() -> tuple[np.ndarray, np.ndarray]:
    cams = np.zeros((4, 10, 10))
    cams[:, 2:4, 2:4] = 1.0  # energy 4 in the square
    cams[:, 8, 8] = 0.5  # plus 0.5 elsewhere: total 4.5
    masks = np.zeros((4, 10, 10), dtype=np.uint8)
    masks[0, 2:4, 2:4] = 1  # the square: energy 4/4.5, hit
    masks[1, 6:8, 0:2] = 1  # elsewhere: energy 0, miss, peak (2, 2) to (6, 1) = sqrt(17)
    masks[3, 1:5, 1:5] = 255  # larger, any non-zero value is lesion
    return cams, masks  # mask 2 empty: skipped


def test_localisation_scores_known_values() -> None:
    cams, masks = _constructed()
    ids = [f"I-{i:012x}" for i in range(4)]
    scores = localisation_scores(cams, masks, image_ids=ids)
    assert list(scores.columns) == SCORE_COLUMNS
    assert scores["position"].tolist() == [0, 1, 3]
    assert scores["image_id"].tolist() == [ids[0], ids[1], ids[3]]
    assert scores["energy_inside"].tolist() == pytest.approx([4 / 4.5, 0.0, 4 / 4.5])
    assert scores["mask_fraction"].tolist() == pytest.approx([0.04, 0.04, 0.16])
    assert scores["pointing_hit"].tolist() == [True, False, True]
    assert scores["peak_distance_px"].tolist() == pytest.approx([0.0, math.sqrt(17), 0.0])
    # chance at tolerance 0: a random maximum hits the lesion as often as its area share
    assert scores["pointing_chance"].tolist() == pytest.approx([0.04, 0.04, 0.16])


def test_pointing_tolerance_and_missing_masks() -> None:
    cams, masks = _constructed()
    near = localisation_scores(cams, masks, tolerance_px=4.2)
    assert near["pointing_hit"].tolist() == [True, True, True]
    for row, chance in zip(near.position, near.pointing_chance, strict=True):
        lesion = np.argwhere(masks[row] > 0)
        within = [
            min(math.dist((y, x), tuple(p)) for p in lesion) <= 4.2
            for y in range(10)
            for x in range(10)
        ]
        assert chance == pytest.approx(np.mean(within))
    assert (near["pointing_chance"] > near["mask_fraction"]).all()
    assert near["energy_inside"].tolist() == pytest.approx([4 / 4.5, 0.0, 4 / 4.5])  # exact mask
    partial = localisation_scores(cams, [masks[0], None, None, None])
    assert partial["position"].tolist() == [0]


@pytest.mark.parametrize("masks", [None, np.zeros((4, 10, 10), dtype=np.uint8), [None] * 4])
def test_no_masks_gives_empty_table_with_columns(masks) -> None:
    scores = localisation_scores(_constructed()[0], masks)
    assert scores.empty and list(scores.columns) == SCORE_COLUMNS
    summary = summarise_localisation(scores)
    assert summary.empty and list(summary.columns) == ["arm"] + SUMMARY_COLUMNS


def test_localisation_scores_rejects_mismatches() -> None:
    cams, masks = _constructed()
    with pytest.raises(ValueError, match="shape"):
        localisation_scores(cams, masks[:, :5, :5])
    with pytest.raises(ValueError, match="one per CAM"):
        localisation_scores(cams, masks[:2])
    with pytest.raises(ValueError, match="negative"):
        localisation_scores(-cams, masks)


# -- sampling ---------------------------------------------------------------------------------


def _manifest(n: int = 20, lesions=(1, 4, 7)) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "index": np.arange(100, 100 + n),
            "image_id": [f"I-{i:012x}" for i in range(n)],
            "lesion": [i in lesions for i in range(n)],
        }
    )


def test_select_samples_prefers_lesions_and_is_seeded() -> None:
    rows = _manifest()
    two = select_samples(rows, 2, seed=3)
    assert set(two) <= {1, 4, 7} and len(two) == 2
    five = select_samples(rows, 5, seed=3)
    assert {1, 4, 7} <= set(five) and len(set(five)) == 5
    assert np.array_equal(five, select_samples(rows, 5, seed=3))
    assert np.array_equal(five, np.sort(five))
    draws = {tuple(select_samples(rows, 5, seed=s)) for s in range(10)}
    assert len(draws) > 1
    assert np.array_equal(select_samples(rows, 50, seed=0), np.arange(20))
    assert len(select_samples(rows, 0, seed=0)) == 0


def test_select_samples_ignores_row_order_and_reads_csv_booleans() -> None:
    rows = _manifest()
    shuffled = rows.sample(frac=1, random_state=5).reset_index(drop=True)
    picked = rows.iloc[select_samples(rows, 6, seed=9)]["image_id"]
    picked_shuffled = shuffled.iloc[select_samples(shuffled, 6, seed=9)]["image_id"]
    assert set(picked) == set(picked_shuffled)
    as_read = rows.assign(lesion=[True if v else np.nan for v in rows["lesion"]])
    assert set(select_samples(as_read, 3, seed=0)) == {1, 4, 7}
    no_masks = rows.drop(columns="lesion")
    assert len(select_samples(no_masks, 4, seed=0)) == 4


# -- summary ----------------------------------------------------------------------------------


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = sps.norm.ppf(0.975)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def test_summarise_localisation_known_values() -> None:
    scores = pd.DataFrame(
        {
            "arm": ["A", "A", "A", "A", "B", "B"],
            "energy_inside": [0.2, 0.4, 0.6, np.nan, 0.9, 0.7],
            "mask_fraction": [0.1, 0.1, 0.2, 0.2, 0.05, 0.15],
            "pointing_hit": [True, True, False, False, True, True],
            "pointing_chance": [0.3, 0.3, 0.4, 0.4, 0.1, 0.2],
            "tolerance_px": [15.0] * 6,
        }
    )
    summary = summarise_localisation(scores).set_index("arm")
    a = summary.loc["A"]
    assert (a["n"], a["n_empty_cam"], a["pointing_hits"]) == (4, 1, 2)
    assert a["energy_inside_mean"] == pytest.approx(0.4)
    half = sps.t.ppf(0.975, 2) * 0.2 / math.sqrt(3)
    assert a["energy_inside_ci_low"] == 0.0  # 0.4 - 0.497 clipped
    assert a["energy_inside_ci_high"] == pytest.approx(0.4 + half)
    assert a["mask_fraction_mean"] == pytest.approx(0.15)
    assert a["pointing_hit_rate"] == 0.5
    assert a["pointing_chance_mean"] == pytest.approx(0.35)
    assert a["tolerance_px"] == 15.0
    assert (a["pointing_ci_low"], a["pointing_ci_high"]) == pytest.approx(_wilson(2, 4))
    b = summary.loc["B"]
    assert b["pointing_hit_rate"] == 1.0 and b["pointing_ci_high"] == pytest.approx(1.0)
    assert (b["pointing_ci_low"], b["pointing_ci_high"]) == pytest.approx(_wilson(2, 2))
    single = summarise_localisation(scores.drop(columns="arm"))
    assert single["arm"].tolist() == ["all"] and single.loc[0, "n"] == 6


def test_pointing_tolerance_is_15_input_pixels_by_default() -> None:
    from mskdx.evaluate.localisation import POINTING_TOLERANCE_PX

    assert POINTING_TOLERANCE_PX == 15.0  # Zhang et al.'s tolerance, in network-input pixels
    cams = np.zeros((1, 64, 140))
    cams[0, 10, 25] = 1.0  # the peak 15 px right of the lesion
    masks = np.zeros((1, 64, 140), dtype=np.uint8)
    masks[0, 8:12, 5:11] = 1
    strict = localisation_scores(cams, masks)
    tolerant = localisation_scores(cams, masks, tolerance_px=POINTING_TOLERANCE_PX)
    assert not strict["pointing_hit"][0] and tolerant["pointing_hit"][0]
    assert tolerant["tolerance_px"][0] == 15.0 and strict["tolerance_px"][0] == 0.0
    just_out = localisation_scores(cams, masks, tolerance_px=14.9)
    assert not just_out["pointing_hit"][0]
