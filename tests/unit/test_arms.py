"""Any network as an arm: torchvision builders (two families), a user's builder, their weights,
heads, Grad-CAM layers, complexity, checkpoints and the checks that stop a bad spec early."""

import pytest
import torch
from torch import nn

from mskdx.errors import ConfigError
from mskdx.evaluate.complexity import complexity_table
from mskdx.learn import arms, gradcam, weights
from mskdx.learn.gradcam import compute_cams

torch.set_num_threads(2)

TINY = (3, 32, 48)  # C, H, W: small, not square
RESNET18 = {"architecture": "torchvision", "name": "resnet18", "weights": "none"}
EFFNET = {"architecture": "torchvision", "name": "efficientnet_b0", "weights": "none"}
DENSENET = {"architecture": "torchvision", "name": "densenet121", "weights": "none"}
USER = {"architecture": "python", "builder": "user_nets:tiny_net", "options": {"width": 6}}


@pytest.mark.parametrize(
    "spec, head",
    [(RESNET18, "fc"), (EFFNET, "classifier.1"), (DENSENET, "classifier"), (USER, "7")],
    ids=["resnet18", "efficientnet_b0", "densenet121", "user"],
)
def test_build_gives_two_logits_and_a_cam_layer(spec, head):
    torch.manual_seed(0)
    model = arms.build(spec).eval()
    assert arms.head_path(model) == head
    assert model.get_submodule(head).out_features == 2
    with torch.inference_mode():
        assert model(torch.randn(2, *TINY)).shape == (2, 2)
    arms.check_arm(spec, TINY)
    layer = gradcam.cam_layer(model, "last", TINY)
    assert any(isinstance(m, nn.Conv2d) for m in layer.modules())
    cams = compute_cams(model, torch.randn(2, *TINY), layer)
    assert cams.shape == (2, *TINY[1:]) and cams.min() >= 0 and cams.max() <= 1


def test_cam_layer_found_per_family():
    assert gradcam.cam_layer(arms.build(RESNET18), "last", TINY) is not None
    resnet = arms.build(RESNET18)
    assert gradcam.cam_layer(resnet, "last", TINY) is resnet.layer4
    eff = arms.build(EFFNET)
    assert gradcam.cam_layer(eff, "last", TINY) is eff.features
    assert gradcam.cam_layer(eff, "features.7", TINY) is eff.features[7]
    user = arms.build(USER)
    assert gradcam.cam_layer(user, "last", TINY) is user[3]  # the last convolution
    with pytest.raises(ValueError, match="features.7"):
        gradcam.cam_layer(eff, "features.70")


def test_seeded_build_is_reproducible():
    torch.manual_seed(3)
    a = arms.build(EFFNET).state_dict()
    torch.manual_seed(3)
    b = arms.build(EFFNET).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_local_weights_fit_and_misfit(tmp_path):
    torch.manual_seed(1)
    import torchvision

    reference = torchvision.models.resnet18(weights=None).state_dict()  # 1000-class head
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": reference}, path)
    model = arms.build({**RESNET18, "weights": str(path)})
    assert torch.equal(model.layer4[1].conv2.weight, reference["layer4.1.conv2.weight"])
    assert model.fc.out_features == 2
    # a fine-tuned 2-class file keeps its head too
    tuned = arms.build(RESNET18).state_dict()
    torch.save(tuned, path)
    assert torch.equal(arms.build({**RESNET18, "weights": str(path)}).fc.weight, tuned["fc.weight"])
    # another network's weights: the first key that does not fit is named
    bad = dict(reference)
    bad["layer1.0.conv1.weight"] = torch.zeros(1)
    torch.save(bad, path)
    with pytest.raises(ConfigError, match=r"first mismatching key 'layer1.0.conv1.weight'"):
        arms.check_arm({**RESNET18, "weights": str(path)}, TINY, where="studies.gout.arms.tv")
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(ConfigError, match=r"studies.gout.arms.tv: .*'layer1.2.conv1.weight'"):
        arms.check_arm({**RESNET18, "weights": str(path)}, TINY, where="studies.gout.arms.tv")
    with pytest.raises(ConfigError, match="no such file"):
        arms.check_arm({**RESNET18, "weights": str(tmp_path / "nope.pth")}, TINY)


def test_user_builder_weights(tmp_path):
    torch.manual_seed(2)
    state = arms.build(USER).state_dict()
    path = tmp_path / "mine.pt"
    torch.save(state, path)
    model = arms.build({**USER, "weights": str(path)})
    assert torch.equal(model[0].weight, state["0.weight"])
    with pytest.raises(ConfigError, match="'0.weight'"):
        arms.check_arm({**USER, "options": {"width": 4}, "weights": str(path)}, TINY)


def test_imagenet_weights_from_the_hub_cache(tmp_path, monkeypatch):
    """torchvision's own loading (get_state_dict, check_hash) from a cached file: no download."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    calls = []
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda url, *a, **k: calls.append(url))
    enum = arms.imagenet_weights("resnet18")
    assert str(enum) == "ResNet18_Weights.IMAGENET1K_V1"
    torch.manual_seed(5)
    reference = torchvision.models.resnet18(weights=None).state_dict()
    cache = tmp_path / "hub" / "checkpoints" / enum.url.rsplit("/", 1)[1]
    cache.parent.mkdir(parents=True)
    torch.save(reference, cache)
    model = arms.build({**RESNET18, "weights": "imagenet"})
    assert torch.equal(model.conv1.weight, reference["conv1.weight"])
    assert model.fc.out_features == 2 and calls == []
    cache.unlink()
    with pytest.raises(weights.WeightsUnavailableError, match=cache.name):
        arms.build({**RESNET18, "weights": "imagenet"})
    # the parse-time check does not download: it only asks whether the weights exist
    arms.check_arm({**RESNET18, "weights": "imagenet"}, TINY)


def test_bad_specs_stop_with_clear_errors():
    with pytest.raises(ConfigError, match="close matches: resnet18"):
        arms.check_arm({**RESNET18, "name": "resnet_18"}, TINY)
    with pytest.raises(ConfigError, match="efficientnet_b0"):
        arms.check_arm({**RESNET18, "name": "efficientnetb0"}, TINY)
    with pytest.raises(ConfigError, match="'no_such_module' cannot be imported"):
        arms.check_arm({**USER, "builder": "no_such_module:net"}, TINY)
    with pytest.raises(ConfigError, match="has no 'missing'"):
        arms.check_arm({**USER, "builder": "user_nets:missing"}, TINY)
    with pytest.raises(ConfigError, match="expected 'package.module:function'"):
        arms.check_arm({**USER, "builder": "user_nets.tiny_net"}, TINY)
    with pytest.raises(ConfigError, match="returned a str; expected a torch.nn.Module"):
        arms.check_arm({**USER, "builder": "user_nets:not_a_module", "options": {}}, TINY)
    with pytest.raises(ConfigError, match=r"gives \(1, 3\) .* expected \(1, 2\)"):
        arms.check_arm({**USER, "builder": "user_nets:three_logits", "options": {}}, TINY)
    with pytest.raises(ConfigError, match="cannot be built.*TypeError"):
        arms.check_arm({**USER, "options": {"depth": 3}}, TINY)
    with pytest.raises(ConfigError, match="fails on one 3x32x48 image"):
        arms.check_arm({**RESNET18, "name": "vit_b_16"}, TINY)  # needs 224x224
    with pytest.raises(ConfigError, match="imagenet is for torchvision arms"):
        arms.check_arm({**USER, "weights": "imagenet"}, TINY)


def test_gradcam_layer_checked_before_any_job():
    arms.check_arm(USER, TINY, gradcam_layer="3")
    arms.check_arm({"architecture": "resnet_blocks", "blocks": 3}, TINY, gradcam_layer="layer3")
    with pytest.raises(ConfigError, match=r"arms.e: gradcam.layer='layer3': .*no ResNet stages"):
        arms.check_arm(EFFNET, TINY, where="arms.e", gradcam_layer="layer3")
    with pytest.raises(ConfigError, match=r"gradcam.layer='features.70'.*features.7"):
        arms.check_arm(EFFNET, TINY, gradcam_layer="features.70")
    resnet50 = {"architecture": "resnet50", "weights": "imagenet"}  # built without its weights
    with pytest.raises(ConfigError, match="no such module"):
        arms.check_arm(resnet50, TINY, gradcam_layer="layer4.9")


def test_complexity_table_counts_every_kind_at_the_study_input():
    specs = {
        "blocks3": {"architecture": "resnet_blocks", "blocks": 3},
        "tvresnet18": {**RESNET18, "weights": "imagenet"},  # counted without loading
        "mine": USER,
    }
    table = complexity_table(specs, (3, 64, 64)).set_index("arm")
    assert table.loc["tvresnet18", "params_m"] == pytest.approx(11.1775, abs=1e-3)
    assert table.loc["tvresnet18", "architecture"] == "torchvision resnet18"
    assert set(table["input"]) == {"3x64x64"}
    assert table["paper_params_m"].isna().all()  # not the paper's input size
    assert (table["macs_m"] > 0).all()
    paper = complexity_table({"blocks3": specs["blocks3"]}, (3, 320, 700))
    assert paper.loc[0, "paper_params_m"] == pytest.approx(4.91)


def test_checkpoint_rebuilds_a_torchvision_arm(tmp_path):
    """checkpoint_final.pt holds the arm spec: load_final builds the same network from it."""
    from mskdx.learn.augment import Normalization
    from mskdx.learn.checkpoints import load_final, save_final

    torch.manual_seed(4)
    model = arms.build(EFFNET)
    path = tmp_path / "checkpoint_final.pt"
    save_final(
        path,
        model=model,
        epoch=1,
        epochs=1,
        select="last",
        val_auc=None,
        args={},
        arm_spec={**EFFNET, "gradcam": {"layer": "features.7"}},
        normalization=Normalization("image_zscore"),
        class_weights=None,
        shape=TINY[1:],
    )
    loaded, state = load_final(path)
    x = torch.randn(1, *TINY)
    with torch.inference_mode():
        assert torch.allclose(loaded(x), model.eval()(x))


@pytest.mark.parametrize(
    "arm, ok",
    [
        ({**RESNET18, "gradcam": {"layer": "layer3.1"}}, True),
        ({**USER, "weights": "/data/mine.pt"}, True),
        ({"architecture": "torchvision", "weights": "none"}, False),  # no name
        ({"architecture": "python"}, False),  # no builder
        ({**USER, "builder": "user_nets.tiny_net"}, False),  # no colon
        ({"architecture": "resnet_blocks", "blocks": 3, "weights": "/x.pt"}, False),
        ({**RESNET18, "gradcam": {"layer": "features[7]"}}, False),
        ({"architecture": "keras", "name": "resnet18"}, False),
    ],
)
def test_schema_takes_the_arm_kinds(arm, ok):
    from pathlib import Path

    import yaml
    from snakemake.utils import validate

    repo = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((repo / "config/config.yaml").read_text())
    config["studies"]["gout"]["arms"]["new"] = arm
    schema = str(repo / "workflow/schemas/config.schema.yaml")
    if ok:
        validate(config, schema)
    else:
        with pytest.raises(Exception, match="ValidationError|not valid|does not match|is not"):
            validate(config, schema)
