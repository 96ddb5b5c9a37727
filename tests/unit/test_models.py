"""Networks: Table II reproduction, shapes, Grad-CAM layer, ResNet50 weight loading."""

import pytest
import torch
from torch import nn

from mskdx.evaluate.complexity import complexity_table
from mskdx.evaluate.papers.printed import gout_table2
from mskdx.learn import arms, gradcam, models, weights

torch.set_num_threads(2)

# our counts at 3x320x700 (thop convention), and the paper's Table II
OURS = {
    2: (4_612_226, 7_558_268_416),
    3: (4_832_834, 2_972_970_496),
    4: (4_906_818, 4_012_330_496),
    6: (5_276_226, 6_093_385_216),
}


def rel(a: float, b: float) -> float:
    return abs(a - b) / b


@pytest.mark.parametrize("blocks", [2, 4, 6])
def test_table2_matches_paper(blocks):
    params, macs = models.complexity(
        arms.build({"architecture": "resnet_blocks", "blocks": blocks})
    )
    paper = gout_table2()[blocks]
    assert rel(params / 1e6, paper["params_m"]) < 1e-3
    assert rel(macs / 1e6, paper["macs_m"]) < 1e-3
    assert (params, macs) == OURS[blocks]


def test_table2_three_blocks_is_ours():
    params, macs = models.complexity(models.resnet_blocks(3))
    assert rel(params / 1e6, 4.833) < 1e-3
    assert rel(macs / 1e6, 2972.97) < 1e-3
    # the paper's 3-block row is 0.3% off (likely a copy error); document, don't match
    assert 0.002 < rel(macs / 1e6, gout_table2()[3]["macs_m"]) < 0.004


def test_complexity_table():
    arms = {f"blocks{b}": {"architecture": "resnet_blocks", "blocks": b} for b in (2, 3, 4, 6)}
    arms["T1"] = {"architecture": "resnet50", "weights": "imagenet", "sequence": "T1"}
    table = complexity_table(arms, (3, 320, 700))
    assert list(table["arm"]) == ["blocks2", "blocks3", "blocks4", "blocks6", "T1"]
    assert list(table.columns) == [
        "arm",
        "architecture",
        "input",
        "params_m",
        "macs_m",
        "paper_params_m",
        "paper_macs_m",
        "params_diff_pct",
        "macs_diff_pct",
    ]
    gout = table.set_index("arm").loc[["blocks2", "blocks4", "blocks6"]]
    assert (gout["params_diff_pct"].abs() < 0.1).all()
    assert (gout["macs_diff_pct"].abs() < 0.1).all()
    assert table.loc[4, "paper_macs_m"] is None or table["paper_macs_m"].isna().iloc[4]
    assert table.loc[4, "params_m"] == pytest.approx(23.5121, abs=1e-3)  # needs no weights


def test_complexity_counts_conv_bn_linear():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    params, macs = models.complexity(model, (3, 5, 5))
    conv = 4 * 25 * 3 * 9
    assert macs == conv + 4 * 100 + (25 + 1) * 4 + 4 * 2
    assert params == 3 * 4 * 9 + 8 + 4 * 2 + 2


@pytest.mark.parametrize("blocks", [2, 3, 4, 6])
def test_forward_small_input_and_cam_layer(blocks):
    model = models.resnet_blocks(blocks).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 32, 70))
    assert out.shape == (2, 2)
    layer = gradcam.cam_layer(model)
    assert layer is model.layer4
    assert any(isinstance(m, nn.Conv2d) for m in layer.modules())
    assert isinstance(layer[-1], torchvision_basic_block())


def test_cam_layer_by_name():
    model = models.resnet_blocks(3)
    assert gradcam.cam_layer(model, "layer3") is model.layer3
    assert gradcam.cam_layer(model, "last") is model.layer4
    with pytest.raises(ValueError, match="'layer1'.*no convolutions"):
        gradcam.cam_layer(model, "layer1")  # the 3-block net has no layer1 block
    with pytest.raises(ValueError, match="no such module; expected 'last' or a module path"):
        gradcam.cam_layer(model, "layer9")
    assert gradcam.cam_layer(model, "layer3.0.conv1") is model.layer3[0].conv1  # a module path
    # the earlier stage's map is twice as fine: 4 x 9 cells on a 64 x 140 input, not 2 x 5
    shapes = {}
    for name in ("layer3", "layer4"):
        handle = gradcam.cam_layer(model, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[-2:]))
        )
        with torch.inference_mode():
            model.eval()(torch.randn(1, 3, 64, 140))
        handle.remove()
    assert shapes == {"layer3": (4, 9), "layer4": (2, 5)}


def torchvision_basic_block():
    from torchvision.models.resnet import BasicBlock

    return BasicBlock


def test_stage_plans():
    two = models.resnet_blocks(2)
    assert len(two.layer1) == len(two.layer2) == 0
    assert two.conv1.out_channels == 128
    assert two.layer3[0].conv1.in_channels == 128 and two.layer3[0].conv1.stride == (2, 2)
    six = models.resnet_blocks(6)
    assert [len(six.layer1), len(six.layer2), len(six.layer3), len(six.layer4)] == [2, 2, 1, 1]
    assert sum(isinstance(m, torchvision_basic_block()) for m in six.modules()) == 6


def test_resnet50_weights_none_and_cam_layer():
    model = arms.build({"architecture": "resnet50", "weights": "none"}).eval()
    assert model.fc.out_features == 2 and model.fc.in_features == 2048
    with torch.inference_mode():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    assert gradcam.cam_layer(model) is model.layer4


@pytest.fixture
def no_download(monkeypatch):
    """Make any download attempt fail loudly instead of touching the network."""
    calls = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.delenv(weights.RESNET50_WEIGHTS_ENV, raising=False)
    return calls


def test_resnet50_refuses_a_cache_file_that_does_not_match_its_hash(
    tmp_path, monkeypatch, no_download
):
    """torchvision's file name carries its SHA-256 prefix (0676ba61): a random state dict saved
    under that name is refused (the loading itself: tests/unit/test_weights.py)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.resnet50(weights=None).state_dict()
    target = tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    assert weights.resnet50_cache_file() == target
    target.parent.mkdir(parents=True)
    torch.save(reference, target)
    with pytest.raises(weights.WeightsUnavailableError, match="0676ba61"):
        arms.build({"architecture": "resnet50", "weights": "imagenet", "sequence": "T1"})
    assert no_download == []


def test_resnet50_explicit_path(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    import torchvision

    reference = torchvision.models.resnet50(weights=None).state_dict()
    path = tmp_path / "mine.pth"
    torch.save({"state_dict": reference}, path)
    monkeypatch.setenv(weights.RESNET50_WEIGHTS_ENV, str(path))
    model = models.resnet50("imagenet")
    assert torch.equal(model.conv1.weight, reference["conv1.weight"])
    monkeypatch.delenv(weights.RESNET50_WEIGHTS_ENV)
    model = arms.build(
        {"architecture": "resnet50", "weights": "imagenet", "weights_path": str(path)}
    )
    assert torch.equal(model.layer4[2].conv3.weight, reference["layer4.2.conv3.weight"])
    assert no_download == []


def test_resnet50_missing_weights_message(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    with pytest.raises(RuntimeError) as info:
        arms.build({"architecture": "resnet50", "weights": "imagenet"})
    message = str(info.value)
    assert str(expected) in message
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in message
    assert "weights: none" in message and weights.RESNET50_WEIGHTS_ENV in message
    assert isinstance(info.value, weights.WeightsUnavailableError)
    assert no_download  # it tried torchvision's download, which the fixture refused


def test_resnet50_missing_explicit_path(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv(weights.RESNET50_WEIGHTS_ENV, str(tmp_path / "nope.pth"))
    with pytest.raises(weights.WeightsUnavailableError, match="nope.pth"):
        models.resnet50("imagenet")
    assert no_download == []


def test_bad_specs():
    from mskdx.errors import ConfigError

    with pytest.raises(ConfigError, match="blocks"):
        arms.build({"architecture": "resnet_blocks", "blocks": 5})
    with pytest.raises(ConfigError, match="architecture.*torchvision or python"):
        arms.build({"architecture": "vgg"})
    with pytest.raises(ConfigError, match="weights"):
        arms.build({"architecture": "resnet_blocks", "blocks": 2, "weights": "imagenet"})
