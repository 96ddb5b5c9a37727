"""Any network as an arm: torchvision classification builders and a user's own builder.

An arm spec (config `studies.<study>.arms.<arm>`) of these kinds:

- ``architecture: torchvision``, ``name:`` a classification builder of ``torchvision.models``
  (``resnet18``, ``efficientnet_b0``, ``densenet121``, ``convnext_tiny``, ``vit_b_16`` with
  ``options: {image_size: ...}`` where the input is square, ...), ``weights: imagenet | none |
  <path of a state dict>``. The classifier head (the last linear layer: ``fc``,
  ``classifier[-1]``, ``heads.head``, ...; squeezenet's final 1x1 convolution) is replaced by a
  2-class one after the weights are loaded. ``imagenet`` is the builder's ``IMAGENET1K_V1``
  weights (its ``DEFAULT`` where it has no V1), loaded by torchvision itself
  (``Weights.get_state_dict`` with ``check_hash``, from the torch hub cache when the file is there).
- ``architecture: python``, ``builder: "package.module:function"``: a function, importable in the
  run's environment (installed, or on PYTHONPATH), that returns an ``nn.Module`` giving 2 logits
  for a (N, 3, H, W) batch; ``weights: none | <path of a state dict>`` (the whole network's keys).

``options`` (a mapping) are keyword arguments of the builder. The input is the grey image
repeated to 3 channels, as for the papers' arms. `check_arm` finds a bad spec before any job
starts (it runs when the workflow is parsed).
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Callable, Mapping

import torch
from torch import nn

from mskdx.errors import ConfigError
from mskdx.learn import gradcam, models
from mskdx.learn import weights as weights_module
from mskdx.learn.models import NUM_CLASSES

log = logging.getLogger(__name__)

TORCHVISION, PYTHON = "torchvision", "python"
ARCHITECTURES = (TORCHVISION, PYTHON)


def torchvision_names() -> list[str]:
    """The classification builders of torchvision.models (no detection, video, ...)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _check_name(name: object) -> str:
    names = torchvision_names()
    if name in names:
        return str(name)
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.5)
    hint = f"close matches: {', '.join(close)}" if close else f"e.g. {', '.join(names[:6])}, ..."
    raise ConfigError(
        f"name={name!r}: not a torchvision classification model; {hint} "
        "(all: torchvision.models.list_models(module=torchvision.models))"
    )


def head_path(model: nn.Module) -> str:
    """Dotted path of the classifier head: the last nn.Linear (squeezenet: the last 1x1 conv)."""
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linear:
        return linear[-1]
    convs = [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)
    ]
    if convs:
        return convs[-1]
    raise ConfigError(f"{type(model).__name__}: no linear layer or 1x1 convolution as a head")


def replace_head(model: nn.Module, num_classes: int = NUM_CLASSES) -> str:
    """Replace the classifier head by a freshly initialised `num_classes` one; return its path."""
    path = head_path(model)
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    old = getattr(parent, attr)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, 1, bias=old.bias is not None)
    setattr(parent, attr, new)
    return path


def load_fitting(model: nn.Module, state: Mapping, source: str, skip: str | None = None) -> None:
    """Load `state` into `model`, every key fitting (those under `skip`, the head, left out);
    else raise ConfigError naming the first key that does not fit."""

    def kept(key: str) -> bool:
        return skip is None or not (key == skip or key.startswith(skip + "."))

    own = {k: v for k, v in model.state_dict().items() if kept(k)}
    given = {k: v for k, v in state.items() if kept(k)}
    problems = [
        (k, "missing from the file" if k not in given else f"shape {tuple(given[k].shape)}")
        for k, v in own.items()
        if k not in given or tuple(given[k].shape) != tuple(v.shape)
    ]
    problems += [(k, "not in the network") for k in given if k not in own]
    if problems:
        key, why = problems[0]
        expected = f"shape {tuple(own[key].shape)}" if key in own and key in given else ""
        raise ConfigError(
            f"{source}: weights do not fit {type(model).__name__}: first mismatching key {key!r} "
            f"({why}{'; expected ' + expected if expected else ''}; {len(problems)} mismatching "
            "keys in all); expected a state dict of this network"
        )
    model.load_state_dict(given, strict=False)


def imagenet_weights(name: str):
    """The torchvision weights enum member `weights: imagenet` means for builder `name`."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"name={name!r}: torchvision has no pretrained weights ({exc})") from exc
    return getattr(enum, "IMAGENET1K_V1", None) or enum.DEFAULT


def build_torchvision(spec: Mapping, *, load: bool = True) -> nn.Module:
    """A torchvision classification network with its weights and a 2-class head."""
    import torchvision

    name = _check_name(spec.get("name"))
    options = dict(spec.get("options") or {})
    weights = str(spec.get("weights", "none"))
    builder = torchvision.models.get_model_builder(name)
    try:
        if weights == "imagenet" and load:
            enum = imagenet_weights(name)
            cache_file = weights_module.hub_cache_file(enum)
            log.info("%s: ImageNet weights %s (%s)", name, enum, cache_file)
            try:
                # torchvision's own loading: Weights.get_state_dict(check_hash=True) with the
                # builder's key fix-ups (densenet), from the hub cache or by download
                model = builder(weights=enum, progress=False, **options)
            except (OSError, RuntimeError) as exc:
                if isinstance(exc, RuntimeError) and "state_dict" in str(exc):
                    raise
                raise weights_module.WeightsUnavailableError(
                    weights_module.missing_weights_message(
                        enum, f"torchvision {name}", f"{type(exc).__name__}: {exc}"
                    )
                ) from exc
        else:
            model = builder(weights=None, **options)
    except TypeError as exc:
        raise ConfigError(
            f"torchvision {name}: options {options} are not accepted ({exc})"
        ) from exc
    if weights not in ("imagenet", "none") and load:
        state = weights_module.read_state_dict(weights)
        head = head_path(model)
        load_fitting(model, state, f"weights={weights!r}", skip=head)
        path = replace_head(model)
        fresh = model.get_submodule(path).state_dict()
        given = {k[len(path) + 1 :]: v for k, v in state.items() if k.startswith(path + ".")}
        if given.keys() == fresh.keys() and all(given[k].shape == fresh[k].shape for k in fresh):
            model.get_submodule(path).load_state_dict(given)  # a 2-class head of its own
        return model
    replace_head(model)
    return model


def load_builder(ref: object) -> Callable[..., object]:
    """The function named by "package.module:function" (importable in this environment)."""
    expected = "expected 'package.module:function', importable in the run's environment"
    module_name, sep, attr = str(ref).partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"builder={ref!r}: {expected}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"builder={ref!r}: module {module_name!r} cannot be imported "
            f"({type(exc).__name__}: {exc}); {expected} (installed, or on PYTHONPATH)"
        ) from exc
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"builder={ref!r}: {module_name} has no {attr!r}; {expected}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"builder={ref!r}: {attr} is a {type(obj).__name__}; {expected}")
    return obj


def build_python(spec: Mapping, *, load: bool = True) -> nn.Module:
    """A user's network from `builder` (+ `options`), with the whole state dict of `weights`."""
    ref = spec.get("builder")
    model = load_builder(ref)(**dict(spec.get("options") or {}))
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"builder={ref!r} returned a {type(model).__name__}; expected a torch.nn.Module"
        )
    weights = str(spec.get("weights", "none"))
    if weights == "imagenet":
        raise ConfigError(
            f"builder={ref!r}: weights imagenet is for torchvision arms; expected none or a path"
        )
    if weights != "none" and load:
        load_fitting(model, weights_module.read_state_dict(weights), f"weights={weights!r}")
    return model


def build(spec: Mapping, *, load: bool = True) -> nn.Module:
    """Build any arm's network from its config spec: the papers' nets (`resnet_blocks` with
    `blocks`; `resnet50` with ImageNet weights or none), a torchvision classification network or
    a user's builder. `load=False` gives random weights (for counts and checks, no file read).

    The random initialisation draws from torch's global RNG: seed it first.
    """
    spec = dict(spec)
    architecture = spec.get("architecture")
    if architecture == "resnet_blocks":
        if "blocks" not in spec:
            raise ConfigError(f"arm {spec}: architecture resnet_blocks needs `blocks`")
        if spec.get("weights", "none") != "none":
            raise ConfigError(
                f"arm {spec}: resnet_blocks has no pretrained weights; "
                "expected weights: none or no weights key"
            )
        return models.resnet_blocks(int(spec["blocks"]))
    if architecture == "resnet50":
        weights = spec.get("weights", "imagenet") if load else "none"
        return models.resnet50(weights, spec.get("weights_path"))
    if architecture == TORCHVISION:
        return build_torchvision(spec, load=load)
    if architecture == PYTHON:
        return build_python(spec, load=load)
    raise ConfigError(
        f"arm {spec}: architecture={architecture!r}; expected resnet_blocks, resnet50, "
        "torchvision or python"
    )


def describe(spec: Mapping) -> str:
    if spec.get("architecture") == TORCHVISION:
        return f"torchvision {spec.get('name')}"
    if spec.get("architecture") == PYTHON:
        return f"builder {spec.get('builder')}"
    return str(spec.get("architecture"))


def check_arm(
    spec: Mapping,
    input_shape: tuple[int, int, int],
    where: str = "arm",
    gradcam_layer: str = "last",
) -> None:
    """Raise ConfigError (prefixed with `where`) for a spec that cannot train: an unknown name,
    a builder that cannot be imported or returns no module, weights whose keys do not fit, a
    network whose output for one image of `input_shape` (C, H, W) is not 2 logits, or a
    Grad-CAM layer it does not have.

    Pretrained ImageNet weights are not loaded here (a download); a local weights file is."""
    spec = dict(spec)
    kind, weights = spec.get("architecture"), str(spec.get("weights", "none"))
    try:
        if kind == TORCHVISION and weights == "imagenet":
            imagenet_weights(_check_name(spec.get("name")))
        model = build(spec, load=weights != "imagenet")
        model.eval()
        check_output(model, input_shape, describe(spec))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except Exception as exc:  # the user's builder, a torchvision option: any error, named
        raise ConfigError(
            f"{where}: {describe(spec)} cannot be built ({type(exc).__name__}: {exc})"
        ) from None
    try:
        gradcam.cam_layer(model, gradcam_layer, input_shape)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: gradcam.layer={gradcam_layer!r}: {exc}") from None


def check_output(model: nn.Module, input_shape: tuple[int, ...], what: str) -> None:
    """One forward pass of one image: the output must be (1, 2) logits."""
    shape = "x".join(str(int(s)) for s in input_shape)
    try:
        with torch.inference_mode():
            out = model(torch.zeros(1, *input_shape))
    except Exception as exc:
        raise ConfigError(
            f"{what} fails on one {shape} image, the study's input ({type(exc).__name__}: {exc})"
        ) from exc
    if not torch.is_tensor(out) or tuple(out.shape) != (1, NUM_CLASSES):
        got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise ConfigError(
            f"{what} gives {got} for one {shape} image; expected (1, 2): two logits "
            "(negative, positive)"
        )


def check_config_arms(layout) -> None:
    """Stop before any job for an arm of the config that cannot train or be explained (see
    `check_arm`): those `layout.arms_to_check()` names (`mskdx.config.layout.Layout`)."""
    for study, arm in layout.arms_to_check():
        check_arm(
            layout.model_spec(study, arm),
            tuple(layout.training_input_shape(study)),
            where=f"studies.{study}.arms.{arm}",
            gradcam_layer=layout.gradcam_layer(study, arm),
        )
