"""Figures: files that open, sizes that follow the dpi, montage frame colours, byte stability."""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mskdx.evaluate.figures import confusion, curves, gradcam, montage, roc, threshold
from mskdx.evaluate.localisation import localisation_scores

STYLE = {
    "dpi": 50,
    "roc": {"linewidth": 1.5, "ci_band": False},
    "montage": {"images": 4, "columns": 2},
}
IDS = [f"I-{i:012x}" for i in range(8)]


@dataclass(frozen=True)
class _Auc:
    auc: float
    ci_low: float
    ci_high: float


@pytest.fixture
def stats_module():
    """The module the ROC figure takes its DeLong AUCs from (patched by the legend test)."""
    return importlib.import_module("mskdx.evaluate.stats.delong")


def _png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


def _rgb(path: Path) -> np.ndarray:
    pixels = mpimg.imread(path)
    return np.round(pixels[..., :3] * 255).astype(int)


def _images(n: int = 4, h: int = 24, w: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(40, 200, size=(n, h, w), dtype=np.uint8)


def _history() -> pd.DataFrame:
    epochs = np.arange(1, 11)
    return pd.DataFrame(
        {
            "epoch": epochs,
            "train_loss": 1 / epochs,
            "train_acc": 1 - 0.5 / epochs,
            "val_loss": 1.2 / epochs,
            "val_acc": [np.nan] + list(1 - 0.6 / epochs[1:]),
            "lr": 0.001,
            "seconds": 1.0,
        }
    )


def _scores() -> pd.DataFrame:
    cams = np.zeros((6, 10, 10))
    cams[:, 2:5, 2:5] = np.linspace(0.2, 1, 6)[:, None, None]
    cams[:, 8, 8] = 1.0
    masks = np.zeros((6, 10, 10), dtype=np.uint8)
    masks[:, 2:5, 2:5] = 1
    masks[::2, 2:5, 2:5] = 0
    masks[::2, 7:10, 7:10] = 1
    scores = localisation_scores(cams, masks, image_ids=IDS[:6])
    return scores.assign(arm=["T1", "T2"] * 3)


def _roc_data(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(30, dtype=int), np.zeros(40, dtype=int)]
    return {
        "T1": (y, np.clip(y * 0.4 + rng.uniform(0, 0.6, len(y)), 0, 1)),
        "T2": (y, np.clip(y * 0.2 + rng.uniform(0, 0.8, len(y)), 0, 1)),
    }


def _draw_all(folder: Path, style: dict, suffix: str = ".png") -> dict[str, Path]:
    """Draw every figure once into `folder`; return name -> path."""
    images = _images()
    paths = {
        name: folder / f"{name}{suffix}"
        for name in (
            "curves",
            "confusion",
            "roc",
            "threshold",
            "montage",
            "qc",
            "localisation",
            "gradcam",
        )
    }
    curves.plot_training_curves(_history(), "T1", [paths["curves"]], style)
    confusion.plot_confusion(
        [0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ["healthy", "patient"], "T1", [paths["confusion"]], style
    )
    roc.plot_roc(_roc_data(), "Test set", [paths["roc"]], style)
    thresholds = np.round(np.arange(0, 1.0001, 0.02), 2)
    table = pd.DataFrame(
        [
            (f, t, 0.5 + 0.4 * np.exp(-((t - 0.3 - 0.02 * f) ** 2) / 0.02))
            for f in range(3)
            for t in thresholds
        ],
        columns=["fold", "threshold", "train_accuracy"],
    )
    threshold.plot_threshold_curve(
        table, {0: 0.3, 1: 0.32, 2: 0.34}, "blocks3", [paths["threshold"]], style
    )
    montage.plot_prediction_montage(
        images,
        [1, 0, 1, 0],
        [0.9, 0.8, 0.2, 0.1],
        IDS[:4],
        ["healthy", "patient"],
        [paths["montage"]],
        style,
    )
    montage.plot_crop_qc(
        images, ["dorsal", "medial", "dorsal", "plantar"], IDS[:4], [paths["qc"]], style, seed=1
    )
    gradcam.plot_localisation(_scores(), [paths["localisation"]], style)
    cams = np.zeros(images.shape)
    cams[:, 5:12, 10:20] = 1.0
    masks = [np.pad(np.ones((6, 8), np.uint8), ((5, 13), (10, 22))), None, None, np.zeros((24, 40))]
    gradcam.plot_gradcam_grid(images, cams, masks, IDS[:4], [paths["gradcam"]], style)
    return paths


def test_every_figure_writes_png_that_scales_with_dpi(tmp_path, stats_module) -> None:
    low = _draw_all(tmp_path / "dpi50", STYLE)
    high = _draw_all(tmp_path / "dpi100", STYLE | {"dpi": 100})
    for name, path in low.items():
        w, h = _png_size(path)
        w2, h2 = _png_size(high[name])
        assert w > 100 and h > 50, name
        assert abs(w2 - 2 * w) <= 1 and abs(h2 - 2 * h) <= 1, name
        assert mpimg.imread(path).ndim == 3
    # Fixed-size figures: size = figsize x dpi.
    assert _png_size(low["curves"]) == (500, 200)
    assert not list(tmp_path.rglob("*.part"))


def test_pdf_and_svg_outputs_and_one_call_many_paths(tmp_path, stats_module) -> None:
    paths = [tmp_path / "c.png", tmp_path / "c.pdf", tmp_path / "sub" / "c.svg"]
    curves.plot_training_curves(_history(), "T2", paths, STYLE)
    assert paths[1].read_bytes().startswith(b"%PDF") and b"%%EOF" in paths[1].read_bytes()[-32:]
    assert ET.parse(paths[2]).getroot().tag.endswith("svg")
    assert _png_size(paths[0]) == (500, 200)


def test_identical_input_gives_identical_bytes(tmp_path, stats_module) -> None:
    for suffix in (".png", ".pdf", ".svg"):
        first = _draw_all(tmp_path / f"a{suffix}", STYLE, suffix)
        second = _draw_all(tmp_path / f"b{suffix}", STYLE, suffix)
        for name in first:
            assert first[name].read_bytes() == second[name].read_bytes(), (name, suffix)


def test_montage_frames_green_when_correct_red_when_wrong(tmp_path) -> None:
    path = tmp_path / "montage.png"
    images = np.full((2, 30, 30), 128, dtype=np.uint8)
    # left: a patient called patient (correct); right: a healthy subject called patient (wrong)
    montage.plot_prediction_montage(
        images, [1, 0], [0.9, 0.7], IDS[:2], ["healthy", "patient"], [path], STYLE | {"dpi": 100}
    )
    rgb = _rgb(path)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    green = (abs(r - 0) <= 2) & (abs(g - 170) <= 2) & (b <= 2)
    red = (abs(r - 220) <= 2) & (g <= 2) & (b <= 2)
    half = rgb.shape[1] // 2
    assert green[:, :half].sum() > 100 and green[:, half:].sum() == 0
    assert red[:, half:].sum() > 100 and red[:, :half].sum() == 0
    # The frame surrounds the grey image: the centre of the green box is the image's grey.
    rows, cols = np.nonzero(green)
    centre = rgb[(rows.min() + rows.max()) // 2, (cols.min() + cols.max()) // 2]
    assert centre.tolist() == [128, 128, 128]
    # A frame on all four sides: green in the first and last row and column of the box.
    box = green[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert box[0].all() and box[-1].all() and box[:, 0].all() and box[:, -1].all()


def test_montage_threshold_decides_the_frame(tmp_path) -> None:
    path = tmp_path / "m.png"
    images = np.full((1, 30, 30), 128, dtype=np.uint8)
    montage.plot_prediction_montage(
        images, [1], [0.6], IDS[:1], ["healthy", "patient"], [path], STYLE, threshold=0.7
    )
    rgb = _rgb(path)
    assert ((rgb[..., 0] >= 218) & (rgb[..., 1] <= 2)).any()  # 0.6 is not above 0.7: wrong


def test_only_pseudonymous_ids_in_captions(tmp_path) -> None:
    images = _images(2)
    for bad in (["I-0123456789ab", "Jane Doe"], ["I-0123456789ab", "/data/P001/img.dcm"]):
        with pytest.raises(ValueError, match="not a pseudonym"):
            montage.plot_prediction_montage(
                images, [0, 1], [0.1, 0.9], bad, ["a", "b"], [tmp_path / "m.png"], STYLE
            )
        with pytest.raises(ValueError, match="not a pseudonym") as caught:
            montage.plot_crop_qc(images, ["dorsal"] * 2, bad, [tmp_path / "q.png"], STYLE, seed=0)
        assert bad[1] not in str(caught.value)  # the refused value is not echoed into logs
    assert not list(tmp_path.iterdir())


def test_unknown_format_fails_before_writing(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown figure format"):
        curves.plot_training_curves(
            _history(), "x", [tmp_path / "a.png", tmp_path / "a.jpg"], STYLE
        )
    assert not list(tmp_path.iterdir())


def test_crop_qc_selection_is_seeded_and_grouped() -> None:
    series = ["dorsal"] * 5 + ["medial"] * 3 + ["plantar"] * 1
    chosen = montage.select_qc(series, 2, seed=4)
    assert list(chosen) == ["dorsal", "medial", "plantar"]
    assert [len(v) for v in chosen.values()] == [2, 2, 1]
    assert all(series[i] == view for view, idx in chosen.items() for i in idx)
    assert chosen == montage.select_qc(series, 2, seed=4)
    assert len({tuple(montage.select_qc(series, 2, seed=s)["dorsal"]) for s in range(10)}) > 1


def test_crop_qc_figure_depends_on_seed(tmp_path) -> None:
    images = _images(8, seed=2)
    series = ["dorsal"] * 8
    for seed, name in ((1, "a"), (1, "b"), (2, "c")):
        montage.plot_crop_qc(images, series, IDS, [tmp_path / f"{name}.png"], STYLE, seed=seed)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "c.png").read_bytes()


def test_roc_legend_uses_delong_of_each_arm(tmp_path, stats_module, monkeypatch) -> None:
    calls = []

    def recording(y_true, y_score):
        calls.append((np.asarray(y_true).copy(), np.asarray(y_score).copy()))
        return _Auc(0.9041, 0.8872, 0.9268)

    monkeypatch.setattr(stats_module, "delong_auc", recording)
    data = _roc_data()
    roc.plot_roc(data, "x", [tmp_path / "roc.png"], STYLE | {"roc": {"ci_band": True}})
    assert len(calls) == 2
    for (y, s), (arm, (y0, s0)) in zip(calls, data.items(), strict=True):
        assert np.array_equal(y, y0) and np.array_equal(s, s0), arm
    assert roc._roc_label("blocks3", _Auc(0.9041, 0.8872, 0.9268)) == (
        "blocks3 AUC 0.904 (95% CI 0.887–0.927)"
    )
    assert roc._roc_label("T2", _Auc(0.75, float("nan"), float("nan"))) == (
        "T2 AUC 0.750 (95% CI n/a)"
    )
    with pytest.raises(ValueError, match="both classes"):
        roc.plot_roc({"T1": ([1, 1], [0.2, 0.3])}, "x", [tmp_path / "r.png"], STYLE)


def test_roc_band() -> None:
    grid = np.linspace(0, 1, 11)
    y = np.r_[np.ones(20, dtype=int), np.zeros(20, dtype=int)]
    perfect = np.r_[np.linspace(0.6, 1, 20), np.linspace(0, 0.4, 20)]
    low, high = roc.roc_band(y, perfect, grid, resamples=200)
    assert np.all(low == 1) and np.all(high == 1)
    rng = np.random.default_rng(0)
    noise = rng.uniform(size=40)
    low, high = roc.roc_band(y, noise, grid, resamples=200)
    assert np.all((0 <= low) & (low <= high) & (high <= 1))
    assert low[5] < 0.5 < high[5]  # chance lies inside the band for a random score
    again = roc.roc_band(y, noise, grid, resamples=200)
    assert np.array_equal(low, again[0]) and np.array_equal(high, again[1])


def _clustered_roc_data(patients: int = 30, seed: int = 3):
    """(label, score, patient): a shared patient effect on every image's score."""
    rng = np.random.default_rng(seed)
    label = np.arange(patients) % 2
    score = label + rng.normal(0, 1, patients)
    return label, score, np.array([f"P-{g:04d}" for g in range(patients)])


def test_roc_band_resamples_patients() -> None:
    grid = np.linspace(0, 1, 21)
    y, s, patients = _clustered_roc_data()
    once = roc.roc_band(y, s, grid, patients=patients, resamples=300)
    # every patient's image three times: patients resampled, each copy comes with its patient,
    # so every resampled curve, and the band, is the one-image-per-patient band
    y3, s3, p3 = np.repeat(y, 3), np.repeat(s, 3), np.repeat(patients, 3)
    thrice = roc.roc_band(y3, s3, grid, patients=p3, resamples=300)
    assert np.array_equal(once[0], thrice[0]) and np.array_equal(once[1], thrice[1])
    # resampling the images instead takes the copies for independent evidence: narrower
    images = roc.roc_band(y3, s3, grid, resamples=300)
    width = (thrice[1] - thrice[0])[1:-1].mean()
    assert (images[1] - images[0])[1:-1].mean() < 0.8 * width


def test_roc_band_with_one_image_per_patient_is_the_stratified_image_bootstrap() -> None:
    """One image per patient: the draws of pROC's stratified bootstrap, image for image."""
    from sklearn.metrics import roc_curve

    grid = np.linspace(0, 1, 11)
    y, s, patients = _clustered_roc_data(24, seed=5)
    low, high = roc.roc_band(y, s, grid, patients=patients, resamples=200, seed=7)
    rng = np.random.default_rng(7)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    curves = []
    for _ in range(200):
        idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        fpr, tpr, _ = roc_curve(y[idx], s[idx])
        curves.append(tpr[np.searchsorted(fpr, grid, side="right") - 1])
    expected = np.percentile(curves, [2.5, 97.5], axis=0)
    assert np.array_equal(low, expected[0]) and np.array_equal(high, expected[1])


def test_roc_band_keeps_both_classes_with_mixed_patients() -> None:
    """Patients holding both classes (image labels) are a stratum of their own."""
    grid = np.linspace(0, 1, 11)
    y = np.array([1, 0, 1, 0, 0, 0, 1, 1, 0, 1])
    s = np.linspace(0.1, 0.9, 10)
    patients = np.array(["A", "A", "B", "B", "C", "C", "D", "D", "E", "E"])
    low, high = roc.roc_band(y, s, grid, patients=patients, resamples=100)
    assert np.all((0 <= low) & (low <= high) & (high <= 1))


def test_roc_legend_is_clustered_when_patients_are_given(tmp_path, monkeypatch) -> None:
    from mskdx.evaluate.stats import clustered

    calls = []

    def recording(y_true, y_score, clusters):
        calls.append(np.asarray(clusters).copy())
        return _Auc(0.8, 0.7, 0.9)

    monkeypatch.setattr(clustered, "clustered_auc", recording)
    y, s, patients = _clustered_roc_data()
    roc.plot_roc({"a": (y, s, patients)}, "x", [tmp_path / "roc.png"], STYLE)
    assert len(calls) == 1 and np.array_equal(calls[0], patients)


def test_localisation_without_masks_still_writes_a_figure(tmp_path) -> None:
    empty = localisation_scores(np.zeros((2, 5, 5)), None)
    gradcam.plot_localisation(empty, [tmp_path / "loc.png", tmp_path / "loc.pdf"], STYLE)
    assert _png_size(tmp_path / "loc.png")[0] > 0
    assert (tmp_path / "loc.pdf").stat().st_size > 0


def test_training_curves_with_several_folds_and_no_validation(tmp_path) -> None:
    history = pd.concat([_history().assign(fold=f) for f in range(3)], ignore_index=True)
    history.loc[history["fold"] == 2, ["val_loss", "val_acc"]] = np.nan
    curves.plot_training_curves(history, "blocks3", [tmp_path / "c.png"], STYLE)
    with pytest.raises(ValueError, match="lacks columns"):
        curves.plot_training_curves(
            history.drop(columns="val_acc"), "x", [tmp_path / "d.png"], STYLE
        )


def test_confusion_rejects_unknown_labels(tmp_path) -> None:
    with pytest.raises(ValueError, match="outside 0..1"):
        confusion.plot_confusion([0, 2], [0, 1], ["a", "b"], "x", [tmp_path / "c.png"], STYLE)
    # A class without cases is drawn (as a dash), not an error.
    confusion.plot_confusion([0, 0], [0, 1], ["a", "b"], "x", [tmp_path / "c.png"], STYLE)


def test_style_defaults_fill_missing_keys(tmp_path) -> None:
    curves.plot_training_curves(_history(), "x", [tmp_path / "c.png"], {})
    assert _png_size(tmp_path / "c.png") == (1500, 600)  # dpi 150 of config.yaml


def test_crop_qc_shows_flagged_crops_first_with_their_flags(tmp_path, monkeypatch) -> None:
    shown = []
    monkeypatch.setattr(montage, "save_figure", lambda fig, paths, dpi: shown.append(fig))
    images = np.random.default_rng(0).integers(0, 255, (12, 24, 40), dtype=np.uint8)
    series = ["dorsal"] * 12
    ids = [f"I-{i:012x}" for i in range(12)]
    columns = int(STYLE["montage"]["columns"])
    sample = montage.select_qc(series, columns, 3)["dorsal"]
    outside = next(i for i in range(12) if i not in sample)  # not in the seeded sample
    flags = [""] * 12
    flags[outside] = "uniform;small_region"
    montage.plot_crop_qc(images, series, ids, [tmp_path / "q.png"], STYLE, 3, flags=flags)
    titles = [ax.get_title() for ax in shown[0].axes if ax.get_title()]
    assert titles[0] == f"{ids[outside]}\nuniform;small_region"
    assert "1 with an implausible region" in shown[0]._suptitle.get_text()
    with pytest.raises(ValueError, match="flags for 12 images"):
        montage.plot_crop_qc(images, series, ids, [tmp_path / "q.png"], STYLE, 3, flags=[""])
